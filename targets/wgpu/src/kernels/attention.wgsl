// Fused attention, one workgroup per query row: softmax(scale * q . k + mask) @ v.
// Scores are recomputed per pass (max, sum, then chunks of CH keys whose probabilities go
// through workgroup memory), so any key length fits. Grouped-query: K/V heads = H or 1.
// Operands through strides: Q (offset, batch, head, row), K (offset, batch, head, per key,
// per dimension), V (offset, batch, head, row), Y (batch, head, row).
// Tensors are ST (f32, or f16 in an f16 plan: q . k products in f16, their sums, the
// softmax and the probabilities in f32, whose range and bits sums of exponentials need).
// p: [B, H, HK, N, M, D, DV, 0, scale bits, has_mask, ms0, ms1, ms2, ms3, groups_x,
//     q 15..18, k 19..23, v 24..27, y 28..30]
const WG: u32 = {WG}u;
const CH: u32 = 1024u;

@group(0) @binding(1) var<storage, read> q: array<ST>;
@group(0) @binding(2) var<storage, read> k: array<ST>;
@group(0) @binding(3) var<storage, read> v: array<ST>;
@group(0) @binding(4) var<storage, read> mask: array<ST>;
@group(0) @binding(5) var<storage, read_write> y: array<ST>;

var<workgroup> red: array<f32, {WG}>;
var<workgroup> probs: array<f32, 1024>;

fn reduce(v: f32, t: u32, is_max: bool) -> f32 {
    red[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (t < s) {
            if (is_max) { red[t] = max(red[t], red[t + s]); } else { red[t] = red[t] + red[t + s]; }
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size({WG}, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let B = P(0u); let H = P(1u); let HK = P(2u); let N = P(3u); let M = P(4u); let D = P(5u); let DV = P(6u);
    let scale = PF(8u); let has_mask = P(9u);
    let rows = B * H * N;
    let row_raw = wid.x + wid.y * P(14u);
    let live = row_raw < rows;
    let row = min(row_raw, rows - 1u);
    let i = row % N;
    let h = (row / N) % H;
    let b = row / (N * H);
    var hk = 0u;
    if (HK == H) { hk = h; }
    let qo = P(15u) + b * P(16u) + h * P(17u) + i * P(18u);
    let kb = P(19u) + b * P(20u) + hk * P(21u);
    let vb = P(24u) + b * P(25u) + hk * P(26u);
    let mo = b * P(10u) + h * P(11u) + i * P(12u);
    let t = lid.x;

    var mx = -3.4028235e38;
    for (var j = t; j < M; j = j + WG) {
        mx = max(mx, score(qo, kb, j, D, scale, has_mask, mo));
    }
    mx = reduce(mx, t, true);
    var sm = 0.0f;
    for (var j = t; j < M; j = j + WG) {
        sm = sm + exp(score(qo, kb, j, D, scale, has_mask, mo) - mx);
    }
    sm = reduce(sm, t, false);

    var acc: array<f32, 4>;
    for (var c0 = 0u; c0 < M; c0 = c0 + CH) {
        let len = min(CH, M - c0);
        for (var j = t; j < len; j = j + WG) {
            probs[j] = exp(score(qo, kb, c0 + j, D, scale, has_mask, mo) - mx);
        }
        workgroupBarrier();
        for (var e = 0u; e < 4u; e = e + 1u) {
            let c = t + e * WG;
            if (c < DV) {
                var s = acc[e];
                for (var j = 0u; j < len; j = j + 1u) {
                    s = s + probs[j] * f32(v[vb + (c0 + j) * P(27u) + c]);
                }
                acc[e] = s;
            }
        }
        workgroupBarrier();
    }
    if (live) {
        for (var e = 0u; e < 4u; e = e + 1u) {
            let c = t + e * WG;
            if (c < DV) { y[b * P(28u) + h * P(29u) + i * P(30u) + c] = to_st(acc[e] / sm); }
        }
    }
}

fn score(qo: u32, kb: u32, j: u32, D: u32, scale: f32, has_mask: u32, mo: u32) -> f32 {
    var s = 0.0f;
    let ko = kb + j * P(22u);
    let kd = P(23u);
    for (var d = 0u; d < D; d = d + 1u) { s = s + f32(q[qo + d] * k[ko + d * kd]); }
    s = s * scale;
    if (has_mask == 1u) { s = s + f32(mask[mo + j * P(13u)]); }
    return s;
}

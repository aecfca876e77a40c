// Row-wise ops, one workgroup of WG threads per row of L values, tree reductions through
// workgroup memory. OP: 0 softmax, 1 LayerNorm (scale and bias over the row).
// Tensors are ST (f32, or f16 in an f16 plan); the math and the workgroup memory stay f32
// (sums of exponentials, means and variances need its range and bits).
// p: [rows, L, eps bits, has_bias, groups_x]
const WG: u32 = {WG}u;
const OP: u32 = {OP}u;

@group(0) @binding(1) var<storage, read> x: array<ST>;
@group(0) @binding(2) var<storage, read> scale: array<ST>;
@group(0) @binding(3) var<storage, read> bias: array<ST>;
@group(0) @binding(4) var<storage, read_write> y: array<ST>;

var<workgroup> red: array<f32, {WG}>;

fn reduce_sum(v: f32, t: u32) -> f32 {
    red[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (t < s) { red[t] = red[t] + red[t + s]; }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

fn reduce_max(v: f32, t: u32) -> f32 {
    red[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (t < s) { red[t] = max(red[t], red[t + s]); }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size({WG}, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let rows = P(0u);
    let L = P(1u);
    let row = wid.x + wid.y * P(4u);
    // Every thread of a workgroup takes the same branch (row is per workgroup), but the
    // reductions need uniform control flow: out-of-range workgroups compute on row 0's
    // indices clamped and skip the store.
    let live = row < rows;
    let base = min(row, rows - 1u) * L;
    let t = lid.x;
    if (OP == 0u) {
        var m = -3.4028235e38;
        for (var i = t; i < L; i = i + WG) { m = max(m, f32(x[base + i])); }
        m = reduce_max(m, t);
        var s = 0.0f;
        for (var i = t; i < L; i = i + WG) { s = s + exp(f32(x[base + i]) - m); }
        s = reduce_sum(s, t);
        if (live) {
            for (var i = t; i < L; i = i + WG) { y[base + i] = to_st(exp(f32(x[base + i]) - m) / s); }
        }
    } else {
        var s = 0.0f;
        for (var i = t; i < L; i = i + WG) { s = s + f32(x[base + i]); }
        let mean = reduce_sum(s, t) / f32(L);
        var q = 0.0;
        for (var i = t; i < L; i = i + WG) { let d = f32(x[base + i]) - mean; q = q + d * d; }
        let inv = inverseSqrt(reduce_sum(q, t) / f32(L) + PF(2u));
        if (live) {
            for (var i = t; i < L; i = i + WG) {
                var v = (f32(x[base + i]) - mean) * inv * f32(scale[i]);
                if (P(3u) == 1u) { v = v + f32(bias[i]); }
                y[base + i] = to_st(v);
            }
        }
    }
}

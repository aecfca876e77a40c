// Implicit-GEMM 2-D convolution: per group g (workgroup z), Y_g[og, N*OH*OW] =
// W_g[og, cg*KH*KW] x im2col(X_g), through workgroup-memory tiles like the tiled GEMM (T x T
// threads, R x R outputs each, BK = T); the im2col tile is gathered from X as it loads, so
// nothing is materialised. Workgroups stride over the column tiles past 65535.
// Tensors are ST (f32, or f16 in an f16 plan: products in f16, sums in f32, stores through
// to_st); see runtime::Float::header.
// p: [N, C, H, W, O, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl, groups, nhwc, has_bias, total]
const T: u32 = {T}u;
const R: u32 = {R}u;
const BM: u32 = T * R;
const BN: u32 = T * R;
const BK: u32 = T;

@group(0) @binding(1) var<storage, read> x: array<ST>;
@group(0) @binding(2) var<storage, read> w: array<ST>;
@group(0) @binding(3) var<storage, read> bias: array<ST>;
@group(0) @binding(4) var<storage, read_write> y: array<ST>;

var<workgroup> As: array<ST, {TILE}>;
var<workgroup> Bs: array<ST, {TILE}>;

@compute @workgroup_size({T}, {T}, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let C = P(1u); let H = P(2u); let Wd = P(3u); let O = P(4u); let OH = P(5u); let OW = P(6u);
    let KH = P(7u); let KW = P(8u); let sh = P(9u); let sw = P(10u); let dh = P(11u); let dw = P(12u);
    let pt = i32(P(13u)); let pl = i32(P(14u)); let groups = P(15u); let nhwc = P(16u);
    let cg = C / groups;
    let og = O / groups;
    let g = wid.z;
    let khw = KH * KW;
    let K = cg * khw;
    let ohw = OH * OW;
    let cols = P(0u) * ohw;
    let tiles = (cols + BN - 1u) / BN;
    let row0 = wid.y * BM;
    let tid = lid.y * T + lid.x;
    for (var tile = wid.x; tile < tiles; tile = tile + nw.x) {
        let col0 = tile * BN;
        var acc: array<f32, {RR}>;
        for (var k0 = 0u; k0 < K; k0 = k0 + BK) {
            for (var e = 0u; e < R; e = e + 1u) {
                let idx = tid + e * T * T;
                let gr = row0 + idx / BK;
                let gk = k0 + idx % BK;
                var v = ST(0.0);
                if (gr < og && gk < K) { v = w[(g * og + gr) * K + gk]; }
                As[idx] = v;
            }
            for (var e = 0u; e < R; e = e + 1u) {
                let idx = tid + e * T * T;
                let gk = k0 + idx / BN;
                let gc = col0 + idx % BN;
                var v = ST(0.0);
                if (gk < K && gc < cols) {
                    let c = g * cg + gk / khw;
                    let kr = gk % khw;
                    let n = gc / ohw;
                    let pr = gc % ohw;
                    let ih = i32((pr / OW) * sh + (kr / KW) * dh) - pt;
                    let iw = i32((pr % OW) * sw + (kr % KW) * dw) - pl;
                    if (ih >= 0 && ih < i32(H) && iw >= 0 && iw < i32(Wd)) {
                        if (nhwc == 1u) {
                            v = x[((n * H + u32(ih)) * Wd + u32(iw)) * C + c];
                        } else {
                            v = x[((n * C + c) * H + u32(ih)) * Wd + u32(iw)];
                        }
                    }
                }
                Bs[idx] = v;
            }
            workgroupBarrier();
            for (var kk = 0u; kk < BK; kk = kk + 1u) {
                for (var i = 0u; i < R; i = i + 1u) {
                    let av = As[(lid.y * R + i) * BK + kk];
                    for (var j = 0u; j < R; j = j + 1u) {
                        acc[i * R + j] = acc[i * R + j] + f32(av * Bs[kk * BN + lid.x * R + j]);
                    }
                }
            }
            workgroupBarrier();
        }
        for (var i = 0u; i < R; i = i + 1u) {
            let gr = row0 + lid.y * R + i;
            for (var j = 0u; j < R; j = j + 1u) {
                let gc = col0 + lid.x * R + j;
                if (gr < og && gc < cols) {
                    let o = g * og + gr;
                    let n = gc / ohw;
                    let pr = gc % ohw;
                    var v = acc[i * R + j];
                    if (P(17u) == 1u) { v = v + f32(bias[o]); }
                    var yi: u32;
                    if (nhwc == 1u) { yi = (n * ohw + pr) * O + o; } else { yi = (n * O + o) * ohw + pr; }
                    y[yi] = to_st({EPILOGUE});
                }
            }
        }
    }
}

// Tiled GEMM: Y[M, N] = act(alpha * A[M, K] @ B + bias), B [K, N] or [N, K] (transB).
// A W x W workgroup computes a BM x BN tile (R x R outputs per thread) through workgroup
// memory, BK = W columns of A at a time. W and R are substituted per variant.
// Tensors are ST (f32, or f16 in an f16 plan: products in f16, sums in f32, stores through
// to_st); see runtime::Float::header.
// p: [M, N, K, transB, alpha bits, has_bias]
const W: u32 = {W}u;
const R: u32 = {R}u;
const BM: u32 = W * R;
const BN: u32 = W * R;
const BK: u32 = W;

@group(0) @binding(1) var<storage, read> a: array<ST>;
@group(0) @binding(2) var<storage, read> b: array<ST>;
@group(0) @binding(3) var<storage, read> bias: array<ST>;
@group(0) @binding(4) var<storage, read_write> y: array<ST>;

var<workgroup> As: array<ST, {BM_BK}>;
var<workgroup> Bs: array<ST, {BK_BN}>;

@compute @workgroup_size({W}, {W}, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let M = P(0u);
    let N = P(1u);
    let K = P(2u);
    let tb = P(3u);
    let alpha = PF(4u);
    let has_bias = P(5u);
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let tid = lid.y * W + lid.x;
    var acc: array<f32, {RR}>;
    for (var k0 = 0u; k0 < K; k0 = k0 + BK) {
        for (var e = 0u; e < R; e = e + 1u) {
            let idx = tid + e * W * W;
            let r = idx / BK;
            let c = idx % BK;
            let gr = row0 + r;
            let gc = k0 + c;
            var v = ST(0.0);
            if (gr < M && gc < K) { v = a[gr * K + gc]; }
            As[idx] = v;
        }
        for (var e = 0u; e < R; e = e + 1u) {
            let idx = tid + e * W * W;
            let r = idx / BN;
            let c = idx % BN;
            let gk = k0 + r;
            let gn = col0 + c;
            var v = ST(0.0);
            if (gk < K && gn < N) {
                if (tb == 1u) { v = b[gn * K + gk]; } else { v = b[gk * N + gn]; }
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
            let gn = col0 + lid.x * R + j;
            if (gr < M && gn < N) {
                var x = alpha * acc[i * R + j];
                if (has_bias == 1u) { x = x + f32(bias[gn]); }
                y[gr * N + gn] = to_st({EPILOGUE});
            }
        }
    }
}

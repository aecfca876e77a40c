// GEMM without workgroup memory: each invocation computes C consecutive outputs of one row
// straight from global memory (no barriers: the fast shape on drivers that run invocations
// as CPU SIMD lanes, like lavapipe). Same parameters and epilogue as matmul.wgsl.
// Tensors are ST (f32, or f16 in an f16 plan: products in f16, sums in f32, stores through
// to_st); see runtime::Float::header.
// p: [M, N, K, transB, alpha bits, has_bias]
const C: u32 = {C}u;

@group(0) @binding(1) var<storage, read> a: array<ST>;
@group(0) @binding(2) var<storage, read> b: array<ST>;
@group(0) @binding(3) var<storage, read> bias: array<ST>;
@group(0) @binding(4) var<storage, read_write> y: array<ST>;

@compute @workgroup_size({WG}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let M = P(0u);
    let N = P(1u);
    let K = P(2u);
    let tb = P(3u);
    let alpha = PF(4u);
    let has_bias = P(5u);
    let cols = (N + C - 1u) / C;
    let t = gid.x + gid.y * nw.x * {WG}u;
    if (t >= M * cols) { return; }
    let row = t / cols;
    let n0 = (t % cols) * C;
    var acc: array<f32, {C}>;
    let arow = row * K;
    if (tb == 1u) {
        for (var j = 0u; j < C; j = j + 1u) {
            let n = min(n0 + j, N - 1u);
            var s = 0.0f;
            for (var k = 0u; k < K; k = k + 1u) { s = s + f32(a[arow + k] * b[n * K + k]); }
            acc[j] = s;
        }
    } else {
        for (var k = 0u; k < K; k = k + 1u) {
            let av = a[arow + k];
            let brow = k * N;
            for (var j = 0u; j < C; j = j + 1u) {
                acc[j] = acc[j] + f32(av * b[brow + min(n0 + j, N - 1u)]);
            }
        }
    }
    for (var j = 0u; j < C; j = j + 1u) {
        let n = n0 + j;
        if (n < N) {
            var x = alpha * acc[j];
            if (has_bias == 1u) { x = x + f32(bias[n]); }
            y[row * N + n] = to_st({EPILOGUE});
        }
    }
}

// kiln::QMatMul's GEMM on the packed 4x8 dot product: Y[M, N] = act(sa * ws[n] * acc +
// bias[n]), acc = sum_k (a - za)(w - zw[n]) in int32 over a and w shifted to int8, expanded
// as sum a.w - zw[n] sum a - za sum w[n] + K za zw[n]: `dot4I8Packed` on four K values a
// word, a's row sum through a dot with 0x01010101, w's column sums from load. A thread per
// 4 outputs of a row.
// Y is [M, N] row-major, or NCHW when ohw > 0 (a QConv: row = (n, pixel), column = channel).
// p: [M, N, K4, K, has_bias, ohw]; chan, per column: [sum of w, zw, ws bits, bias bits]
@group(0) @binding(1) var<storage, read> aq: array<u32>;
@group(0) @binding(2) var<storage, read> wq: array<u32>;
@group(0) @binding(3) var<storage, read> chan: array<u32>;
@group(0) @binding(4) var<storage, read> qp: array<u32>;
@group(0) @binding(5) var<storage, read_write> y: array<ST>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let M = P(0u);
    let N = P(1u);
    let K4 = P(2u);
    let K = i32(P(3u));
    let cols = (N + 3u) / 4u;
    let t = gid.x + gid.y * nw.x * 64u;
    if (t >= M * cols) { return; }
    let row = t / cols;
    let n0 = (t % cols) * 4u;
    var acc: array<i32, 4>;
    var asum = 0i;
    for (var k = 0u; k < K4; k = k + 1u) {
        let av = aq[row * K4 + k];
        asum = asum + dot4I8Packed(av, 0x01010101u);
        for (var j = 0u; j < 4u; j = j + 1u) {
            acc[j] = acc[j] + dot4I8Packed(av, wq[min(n0 + j, N - 1u) * K4 + k]);
        }
    }
    let sa = bitcast<f32>(qp[0]);
    let za = bitcast<i32>(qp[3]);
    for (var j = 0u; j < 4u; j = j + 1u) {
        let n = n0 + j;
        if (n < N) {
            let zw = bitcast<i32>(chan[n * 4u + 1u]);
            let exact = acc[j] - zw * asum - za * bitcast<i32>(chan[n * 4u]) + K * za * zw;
            var x = (sa * bitcast<f32>(chan[n * 4u + 2u])) * f32(exact);
            if (P(4u) == 1u) { x = x + bitcast<f32>(chan[n * 4u + 3u]); }
            let ohw = P(5u);
            var yi = row * N + n;
            if (ohw > 0u) { yi = ((row / ohw) * N + n) * ohw + row % ohw; }
            y[yi] = to_st({EPILOGUE});
        }
    }
}

// An int8 layer's activation to packed int8 words: row `row` of the GEMM's A, four K values
// a word, K padded with 0; `tap(row, k)` (defined beside this: straight for a QMatMul, a
// convolution's tap for a QConv) reads one value. Each is quantized as the CPU target's
// kiln::QMatMul / QConv kernels do (round half to even, clamp to the type's range) and
// shifted to int8.
// p: [M * K4, K4, K, ...]; qp: [scale bits, zero point in X's own type, signed, zero point as
// int8]; scale 0 only comes from an all-zero X (dynamic): every q is then the zero point.
@group(0) @binding(1) var<storage, read> x: array<ST>;
@group(0) @binding(2) var<storage, read> qp: array<u32>;
@group(0) @binding(3) var<storage, read_write> aq: array<u32>;

fn q8(v: f32) -> i32 {
    let scale = bitcast<f32>(qp[0]);
    let zp = f32(bitcast<i32>(qp[1]));
    let signed = qp[2] == 1u;
    var lo = 0.0f;
    var hi = 255.0f;
    if (signed) { lo = -128.0; hi = 127.0; }
    var q = zp;
    if (scale != 0.0) { q = clamp(round(k_div(v, scale)) + zp, lo, hi); }
    var s = i32(q);
    if (!signed) { s = s - 128; }
    return s;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid.x + gid.y * nw.x * 64u;
    if (i >= P(0u)) { return; }
    let K4 = P(1u);
    let row = i / K4;
    let k0 = (i % K4) * 4u;
    var word = 0u;
    for (var e = 0u; e < 4u; e = e + 1u) {
        let k = k0 + e;
        if (k < P(2u)) { word = word | ((bitcast<u32>(q8(tap(row, k))) & 0xffu) << (8u * e)); }
    }
    aq[i] = word;
}

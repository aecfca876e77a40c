// kiln::QMatMul's activation to packed int8 words (four K values a word, K padded with 0),
// uint8 shifted to int8; rounding half to even and clamping as the CPU kernel does.
// p: [M * K4, K4, K]; qp: [scale bits, zero point in X's own type, signed, zero point as int8]
@group(0) @binding(1) var<storage, read> x: array<ST>;
@group(0) @binding(2) var<storage, read> qp: array<u32>;
@group(0) @binding(3) var<storage, read_write> aq: array<u32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid.x + gid.y * nw.x * 64u;
    if (i >= P(0u)) { return; }
    let K4 = P(1u);
    let K = P(2u);
    let row = i / K4;
    let k0 = (i % K4) * 4u;
    let scale = bitcast<f32>(qp[0]);
    let zp = f32(bitcast<i32>(qp[1]));
    let signed = qp[2] == 1u;
    var lo = 0.0f;
    var hi = 255.0f;
    if (signed) { lo = -128.0; hi = 127.0; }
    var word = 0u;
    for (var e = 0u; e < 4u; e = e + 1u) {
        let k = k0 + e;
        var s = 0i;
        if (k < K) {
            // Scale 0 only comes from an all-zero X (dynamic): every q is the zero point.
            var q = zp;
            if (scale != 0.0) { q = clamp(round(f32(x[row * K + k]) / scale) + zp, lo, hi); }
            s = i32(q);
            if (!signed) { s = s - 128; }
        }
        word = word | ((bitcast<u32>(s) & 0xffu) << (8u * e));
    }
    aq[i] = word;
}


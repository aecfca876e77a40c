// kiln::QMatMul's dynamic quantization: X's range [min(0, min x), max(0, max x)] over 255
// steps (DynamicQuantizeLinear's, as the CPU kernel computes it), one workgroup.
// p: [count]; qp: [scale bits, zero point (uint8), signed = 0, zero point - 128]
@group(0) @binding(1) var<storage, read> x: array<ST>;
@group(0) @binding(2) var<storage, read_write> qp: array<u32>;

var<workgroup> los: array<f32, 256>;
var<workgroup> his: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    var lo = 0.0f;
    var hi = 0.0f;
    for (var i = t; i < P(0u); i = i + 256u) {
        let v = f32(x[i]);
        lo = min(lo, v);
        hi = max(hi, v);
    }
    los[t] = lo;
    his[t] = hi;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s / 2u) {
        if (t < s) {
            los[t] = min(los[t], los[t + s]);
            his[t] = max(his[t], his[t + s]);
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        let scale = k_div(his[0] - los[0], 255.0);
        var zp = 0i;
        if (scale != 0.0) { zp = i32(clamp(round(k_div(-los[0], scale)), 0.0, 255.0)); }
        qp[0] = bitcast<u32>(scale);
        qp[1] = bitcast<u32>(zp);
        qp[2] = 0u;
        qp[3] = bitcast<u32>(zp - 128);
    }
}


// Direct 2-D convolution (grouped and depthwise too), one output element per invocation,
// fused bias + activation. Weights [O, C/groups, KH, KW]; NCHW or NHWC activations.
// Tensors are ST (f32, or f16 in an f16 plan: products in f16, sums in f32, stores through
// to_st); see runtime::Float::header.
// p: [N, C, H, W, O, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl, groups, nhwc, has_bias, total]
@group(0) @binding(1) var<storage, read> x: array<ST>;
@group(0) @binding(2) var<storage, read> w: array<ST>;
@group(0) @binding(3) var<storage, read> bias: array<ST>;
@group(0) @binding(4) var<storage, read_write> y: array<ST>;

@compute @workgroup_size({WG}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid.x + gid.y * nw.x * {WG}u;
    if (i >= P(18u)) { return; }
    let C = P(1u); let H = P(2u); let Wd = P(3u); let O = P(4u); let OH = P(5u); let OW = P(6u);
    let KH = P(7u); let KW = P(8u); let sh = P(9u); let sw = P(10u); let dh = P(11u); let dw = P(12u);
    let pt = i32(P(13u)); let pl = i32(P(14u)); let groups = P(15u); let nhwc = P(16u);
    var n: u32; var o: u32; var oh: u32; var ow: u32;
    if (nhwc == 1u) {
        o = i % O; ow = (i / O) % OW; oh = (i / (O * OW)) % OH; n = i / (O * OW * OH);
    } else {
        ow = i % OW; oh = (i / OW) % OH; o = (i / (OW * OH)) % O; n = i / (OW * OH * O);
    }
    let cg = C / groups;
    let og = O / groups;
    let c0 = (o / og) * cg;
    var acc = 0.0f;
    for (var c = 0u; c < cg; c = c + 1u) {
        for (var kh = 0u; kh < KH; kh = kh + 1u) {
            let ih = i32(oh * sh + kh * dh) - pt;
            if (ih < 0 || ih >= i32(H)) { continue; }
            for (var kw = 0u; kw < KW; kw = kw + 1u) {
                let iw = i32(ow * sw + kw * dw) - pl;
                if (iw < 0 || iw >= i32(Wd)) { continue; }
                var xi: u32;
                if (nhwc == 1u) {
                    xi = ((n * H + u32(ih)) * Wd + u32(iw)) * C + c0 + c;
                } else {
                    xi = ((n * C + c0 + c) * H + u32(ih)) * Wd + u32(iw);
                }
                acc = acc + f32(x[xi] * w[((o * cg + c) * KH + kh) * KW + kw]);
            }
        }
    }
    var v = acc;
    if (P(17u) == 1u) { v = v + f32(bias[o]); }
    y[i] = to_st({EPILOGUE});
}

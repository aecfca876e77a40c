// kiln::QConv's A as im2col rows: row (n, oh, ow), K index (c, kh, kw) as W's [O, C, KH, KW]
// orders it. A tap in the zero padding reads 0, which quantizes to the zero point and adds
// nothing to the GEMM's exact sum.
// p: [M * K4, K4, K, C, H, W, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl, nhwc]
fn tap(row: u32, k: u32) -> f32 {
    let C = P(3u); let H = P(4u); let Wd = P(5u); let OH = P(6u); let OW = P(7u); let KH = P(8u); let KW = P(9u);
    let n = row / (OH * OW);
    let oh = (row / OW) % OH;
    let ow = row % OW;
    let c = k / (KH * KW);
    let ih = i32(oh * P(10u) + ((k / KW) % KH) * P(12u)) - i32(P(14u));
    let iw = i32(ow * P(11u) + (k % KW) * P(13u)) - i32(P(15u));
    if (ih < 0 || ih >= i32(H) || iw < 0 || iw >= i32(Wd)) { return 0.0; }
    if (P(16u) == 1u) { return f32(x[((n * H + u32(ih)) * Wd + u32(iw)) * C + c]); }
    return f32(x[((n * C + c) * H + u32(ih)) * Wd + u32(iw)]);
}

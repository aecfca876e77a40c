use super::util::{assert_close, rand_vec, rng};
use crate::kernels::*;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Naive NCHW convolution in f64 (bias, then activation).
fn naive(s: &Conv2dSpec, x: &[f32], w: &[f32], bias: Option<&[f32]>, act: Activation) -> Vec<f32> {
    let [oh, ow] = s.out_hw().unwrap();
    let (cin_g, cout_g) = (s.in_per_group(), s.out_per_group());
    let mut y = vec![0.0; s.batch * s.out_channels * oh * ow];
    for n in 0..s.batch {
        for co in 0..s.out_channels {
            let g = co / cout_g;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias.map_or(0.0, |b| f64::from(b[co]));
                    for ci in 0..cin_g {
                        for kh in 0..s.kernel[0] {
                            for kw in 0..s.kernel[1] {
                                let ih = (oy * s.stride[0] + kh * s.dilation[0]) as isize - s.pads[0] as isize;
                                let iw = (ox * s.stride[1] + kw * s.dilation[1]) as isize - s.pads[1] as isize;
                                if ih < 0 || iw < 0 || ih >= s.in_h as isize || iw >= s.in_w as isize {
                                    continue;
                                }
                                let c = g * cin_g + ci;
                                let xv = x[((n * s.in_channels + c) * s.in_h + ih as usize) * s.in_w + iw as usize];
                                let wv = w[((co * cin_g + ci) * s.kernel[0] + kh) * s.kernel[1] + kw];
                                acc += f64::from(xv) * f64::from(wv);
                            }
                        }
                    }
                    y[((n * s.out_channels + co) * oh + oy) * ow + ox] = act.apply(acc as f32);
                }
            }
        }
    }
    y
}

/// `[n, c, h, w]` -> `[n, h, w, c]`.
fn to_nhwc(x: &[f32], n: usize, c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for i in 0..n {
        for ch in 0..c {
            for p in 0..h * w {
                out[(i * h * w + p) * c + ch] = x[(i * c + ch) * h * w + p];
            }
        }
    }
    out
}

fn random_spec(r: &mut ChaCha8Rng) -> Conv2dSpec {
    loop {
        let groups = [1, 1, 2, 3][r.random_range(0..4)];
        let depthwise = r.random_bool(0.25);
        let (cin, cout, groups) = if depthwise {
            let c = r.random_range(1..=20);
            (c, c, c)
        } else {
            (groups * r.random_range(1..=5), groups * r.random_range(1..=5), groups)
        };
        let k = [r.random_range(1..=4), r.random_range(1..=4)];
        let s = Conv2dSpec::new(r.random_range(1..=2), cin, [r.random_range(1..=11), r.random_range(1..=11)], cout, k)
            .stride([r.random_range(1..=3), r.random_range(1..=3)])
            .dilation([r.random_range(1..=2), r.random_range(1..=2)])
            .pads([r.random_range(0..=2), r.random_range(0..=2), r.random_range(0..=2), r.random_range(0..=2)])
            .groups(groups);
        if s.out_hw().is_ok() {
            return s;
        }
    }
}

fn check_spec(s: &Conv2dSpec, r: &mut ChaCha8Rng, act: Activation, what: &str) {
    let [oh, ow] = s.out_hw().unwrap();
    let x = rand_vec(r, s.input_len().unwrap());
    let w = rand_vec(r, s.weight_len().unwrap());
    let b = rand_vec(r, s.out_channels);
    let bias = if r.random_bool(0.7) { Some(&b[..]) } else { None };
    let want = naive(s, &x, &w, bias, act);
    let want_nhwc = to_nhwc(&want, s.batch, s.out_channels, oh, ow);
    let x_nhwc = to_nhwc(&x, s.batch, s.in_channels, s.in_h, s.in_w);
    for layout in [ConvLayout::Nchw, ConvLayout::Nhwc] {
        let mut cands = conv_candidates(s, layout, 2);
        // Also exercise small tiles, every ISA, and im2col where it is not a candidate.
        let base = cands[0];
        cands.push(ConvParams { algo: ConvAlgo::Im2col, tile_rows: 1, ..base });
        // Row tiles over threads (one image and group fewer than the threads).
        cands.push(ConvParams { algo: ConvAlgo::Im2col, tile_rows: 1, gemm: base.gemm.threads(2) });
        for c in cands.clone() {
            for isa in Isa::available() {
                cands.push(ConvParams { gemm: GemmParams { isa, ..c.gemm }, ..c });
            }
        }
        let (xin, want) = if layout == ConvLayout::Nchw { (&x, &want) } else { (&x_nhwc, &want_nhwc) };
        for p in &cands {
            // The weights as a plan prepares them for these params (pre-packed panels for a
            // micro-backend pointwise candidate), and the plain ones, which every path takes.
            for cw in [ConvWeights::for_params(s, layout, &w, p).unwrap(), ConvWeights::new(s, layout, &w).unwrap()] {
                let mut y = vec![f32::NAN; want.len()];
                conv2d(xin, &cw, bias, act, &mut y, p).unwrap();
                assert_close(&format!("{what} {s:?} {layout:?} {p:?} {act:?}"), &y, want, 1e-4, 1e-4);
            }
        }
    }
}

#[test]
fn random_convolutions_all_algorithms() {
    let mut r = rng(3);
    let acts = Activation::all();
    for case in 0..150 {
        let s = random_spec(&mut r);
        let act = acts[r.random_range(0..acts.len())];
        check_spec(&s, &mut r, act, &format!("case {case}"));
    }
}

#[test]
fn pointwise_and_mobilenet_like() {
    let mut r = rng(4);
    let specs = [
        Conv2dSpec::new(2, 16, [7, 5], 24, [1, 1]),
        Conv2dSpec::new(1, 24, [9, 9], 24, [3, 3]).pads([1; 4]).groups(24),
        Conv2dSpec::new(1, 32, [10, 10], 32, [3, 3]).pads([1; 4]).stride([2, 2]).groups(32),
        Conv2dSpec::new(1, 3, [17, 17], 8, [3, 3]).stride([2, 2]).pads([0, 0, 1, 1]),
        Conv2dSpec::new(1, 4, [40, 3], 5, [5, 1]).pads([2, 0, 2, 0]),
        // 16 channels: four interior pixels at a time in NHWC.
        Conv2dSpec::new(2, 16, [9, 13], 16, [3, 3]).pads([1; 4]).groups(16),
        Conv2dSpec::new(1, 16, [11, 17], 16, [3, 3]).pads([2, 1, 0, 2]).stride([1, 2]).dilation([2, 2]).groups(16),
        // A CNN's first layer (direct NHWC: four pixels at a time, borders one at a time).
        Conv2dSpec::new(2, 3, [19, 18], 32, [3, 3]).stride([2, 2]).pads([1, 1, 0, 1]),
        Conv2dSpec::new(1, 2, [9, 23], 16, [3, 2]).dilation([2, 3]).pads([2, 0, 1, 3]),
        // A detection head's 3x3 (implicit GEMM: several k blocks and column blocks).
        Conv2dSpec::new(1, 96, [21, 19], 24, [3, 3]).pads([1; 4]),
        Conv2dSpec::new(2, 12, [9, 11], 10, [3, 2]).pads([0, 2, 1, 0]).dilation([2, 3]).groups(2),
    ];
    for s in specs {
        check_spec(&s, &mut r, Activation::RELU6, "fixed");
    }
}

#[test]
fn rejects_bad_specs_and_buffers() {
    let s = Conv2dSpec::new(1, 3, [4, 4], 4, [3, 3]).groups(2);
    assert!(s.out_hw().is_err());
    let s = Conv2dSpec::new(1, 2, [2, 2], 2, [3, 3]);
    assert!(s.out_hw().is_err());
    let s = Conv2dSpec::new(1, 2, [4, 4], 2, [3, 3]);
    assert!(ConvWeights::new(&s, ConvLayout::Nchw, &[0.0; 5]).is_err());
    let w = ConvWeights::new(&s, ConvLayout::Nchw, &[0.0; 36]).unwrap();
    let p = conv_candidates(&s, ConvLayout::Nchw, 1)[0];
    let mut y = vec![0.0; 8];
    assert!(conv2d(&[0.0; 31], &w, None, Activation::None, &mut y, &p).is_err());
    assert!(conv2d(&[0.0; 32], &w, Some(&[0.0; 1]), Activation::None, &mut y, &p).is_err());
    let dw = ConvParams { algo: ConvAlgo::Depthwise, ..p };
    assert!(conv2d(&[0.0; 32], &w, None, Activation::None, &mut y, &dw).is_err());
}

//! `kiln::QConv` (2-D, NCHW or NHWC, constant int8/uint8 weights) on the int8 kernels: X is
//! quantized once (static or dynamic, per tensor), then per image and group an im2col of the
//! u8 values (padding reads the zero point, the quantized 0.0) feeds the int8 GEMM with the
//! scales + bias + activation epilogue; depthwise (one input and one output channel per
//! group) runs a direct i32 loop per channel plane.

use super::conv::{Geometry, geometry, layout_of, spec_in};
use super::qmatmul::{QOperands, XQuant, graph_operands, step_operands};
use super::{Dims, Lowered, activation, bound_shape, dtype_of, filler, pick, step_int, step_ints, step_str, tune};
use crate::kernels::{
    Activation, Conv2dSpec, ConvLayout, QEpilogue, QPackedB, QuantizedA, qgemm, qgemm_candidates, qpack_b, quantize_slice,
};
use kiln_ir::{Graph, Node};
use kiln_target::{Step, TargetError, Tuner};
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.qconv";

pub fn lower(g: &Graph, node: &Node, dims: &Dims, tuner: &mut Tuner) -> Result<Option<Lowered>, TargetError> {
    if dtype_of(g, node, 0) != Some(DType::F32) {
        return Ok(None);
    }
    let Some(act) = activation::from_node(node) else { return Ok(None) };
    let Some(geo) = geometry(|k| node.attr_ints(k).map(<[i64]>::to_vec), |k| node.attr_int(k), node.attr_str("auto_pad").map(String::from))
    else {
        return Ok(None);
    };
    let Some(layout) = layout_of(node.attr_str("layout")) else { return Ok(None) };
    let Ok(ops) = graph_operands(g, node, 0) else { return Ok(None) };
    if ops.w.rank() != 4 || node.attr_ints("kernel_shape").is_some_and(|k| k != [ops.w.shape()[2] as i64, ops.w.shape()[3] as i64]) {
        return Ok(None);
    }
    let Ok(mut step) = QConvStep::new(ops, act, geo, layout) else { return Ok(None) };
    let spec = bound_shape(g, node, 0, dims).and_then(|x| Some((spec_in(&x, &step.w_shape, &geo, layout)?, x)));
    let variant = match spec {
        Some((s, x_shape)) if !step.depthwise() && s.out_hw().is_ok() => {
            let names: Vec<String> = step.candidates(&s).iter().map(|c| format!("{c:?}")).collect();
            let len = x_shape.iter().product();
            let err = |e: String| TargetError::Lower { target: "cpu".into(), node: node.label(), op: node.qualified_op(), reason: e };
            let x = Tensor::from_vec(x_shape, filler(len)).map_err(|e| err(e.to_string()))?;
            let problem = format!("{s:?},{layout:?},{}", step.x.kind());
            tune(tuner, KERNEL, problem, &names, |i| step.run(&[Some(&x)], &names[i]).map(|_| ()))?
        }
        _ => "default".to_string(),
    };
    Ok(Some(Lowered { kernel: KERNEL, variant }))
}

/// A loaded QConv: one packed weight matrix per group (`[Cg kh kw, Mg]`), or the depthwise
/// weights less their zero points; scales per output channel, bias, activation.
pub struct QConvStep {
    x: XQuant,
    geo: Geometry,
    layout: ConvLayout,
    w_shape: [usize; 4],
    packed: Vec<QPackedB>,
    depthwise: Vec<i32>,
    w_scale: Vec<f32>,
    bias: Option<Vec<f32>>,
    act: Activation,
    xq: Vec<u8>,
    /// The quantized X in NHWC when it comes as NCHW (the im2col reads channel runs).
    xt: Vec<u8>,
    a: QuantizedA,
}

impl QConvStep {
    fn new(ops: QOperands, act: Activation, geo: Geometry, layout: ConvLayout) -> Result<QConvStep, String> {
        let &[m, cg, kh, kw] = ops.w.shape() else { return Err(format!("QConv weights must be 4-D, got {:?}", ops.w.shape())) };
        let groups = geo.groups;
        if groups == 0 || m % groups != 0 {
            return Err(format!("group {groups} does not divide {m} output channels"));
        }
        let (mg, kg) = (m / groups, cg * kh * kw);
        let ints = ops.ints()?;
        let zero = |j: usize| ops.w_zero.get(j).or(ops.w_zero.first()).copied().unwrap_or(0);
        let (mut packed, mut depthwise) = (Vec::new(), Vec::new());
        if cg == 1 && mg == 1 {
            let wv: Vec<i32> = match ints {
                crate::kernels::QInts::I8(v) => v.iter().map(|&x| i32::from(x)).collect(),
                crate::kernels::QInts::U8(v) => v.iter().map(|&x| i32::from(x)).collect(),
            };
            depthwise =
                wv.chunks_exact(kg.max(1)).enumerate().flat_map(|(c, w)| w.iter().map(move |&x| x - zero(c)).collect::<Vec<_>>()).collect();
        } else {
            for g in 0..groups {
                // Group g's weights [Mg][Kg] read as B [Kg][Mg], k in the im2col's (ky, kx, c)
                // order (channels innermost, as NHWC rows hold them); zero points per column.
                let zps: Vec<i32> = (0..mg).map(|j| zero(g * mg + j)).collect();
                let b = match ints {
                    crate::kernels::QInts::I8(v) => {
                        qpack_b(crate::kernels::QInts::I8(&taps_last(v, g * mg, mg, cg, kh * kw)?), kg, mg, 1, kg, &zps)
                    }
                    crate::kernels::QInts::U8(v) => {
                        qpack_b(crate::kernels::QInts::U8(&taps_last(v, g * mg, mg, cg, kh * kw)?), kg, mg, 1, kg, &zps)
                    }
                };
                packed.push(b.map_err(|e| e.to_string())?);
            }
        }
        let w_shape = [m, cg, kh, kw];
        Ok(QConvStep {
            x: ops.x,
            geo,
            layout,
            w_shape,
            packed,
            depthwise,
            w_scale: ops.w_scale,
            bias: ops.bias,
            act,
            xq: Vec::new(),
            xt: Vec::new(),
            a: QuantizedA::default(),
        })
    }

    pub fn load(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Result<QConvStep, String> {
        let act = activation::from_step(step).ok_or("unsupported activation")?;
        let geo = geometry(|k| step_ints(step, k), |k| step_int(step, k), step_str(step, "auto_pad").map(String::from))
            .ok_or("unsupported convolution attributes")?;
        let layout = layout_of(step_str(step, "layout")).ok_or("unknown layout")?;
        QConvStep::new(step_operands(step, weight, 0)?, act, geo, layout)
    }

    fn depthwise(&self) -> bool {
        self.packed.is_empty()
    }

    fn candidates(&self, s: &Conv2dSpec) -> Vec<crate::kernels::QGemmParams> {
        let [oh, ow] = s.out_hw().unwrap_or([1, 1]);
        let [m, cg, kh, kw] = self.w_shape;
        qgemm_candidates(oh * ow, m / self.geo.groups.max(1), cg * kh * kw, crate::device::cores())
    }

    pub fn run(&mut self, inputs: &[Option<&Tensor>], variant: &str) -> Result<Tensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input X is missing")?;
        let s = spec_in(x.shape(), &self.w_shape, &self.geo, self.layout)
            .ok_or_else(|| format!("X shape {:?} does not fit the weights {:?}", x.shape(), self.w_shape))?;
        let [oh, ow] = s.out_hw().map_err(|e| e.to_string())?;
        let params = pick(&self.candidates(&s), variant).ok_or("no int8 GEMM candidate")?;
        let xs = x.as_slice::<f32>().map_err(|e| e.to_string())?;
        let q = self.x.params(xs, params.isa);
        self.xq.resize(xs.len(), 0);
        quantize_slice(xs, &q, params.isa, &mut self.xq).map_err(|e| e.to_string())?;
        let scale: Vec<f32> = self.w_scale.iter().map(|&w| q.scale * w).collect();
        let (m, p) = (s.out_channels, oh * ow);
        // Element strides (channel, row, column) of X, and (channel, pixel) of Y, per layout.
        let (xst, yst) = match self.layout {
            ConvLayout::Nchw => ([s.in_h * s.in_w, s.in_w, 1], [p, 1]),
            ConvLayout::Nhwc => ([1, s.in_w * s.in_channels, s.in_channels], [1, m]),
        };
        let geo = Geom { s, ow, xst, za: q.u8_zero_point() };
        let mut y = vec![0f32; s.batch * m * p];
        if self.depthwise() {
            let mut planes = vec![0f32; s.batch * m * p];
            crate::par::chunks(&mut planes, p.max(1), crate::par::ALL, |nc, plane| {
                depthwise_plane(&geo, &self.xq, &self.depthwise, nc, plane)
            });
            for (nc, plane) in planes.chunks_exact(p.max(1)).enumerate() {
                let (n, c) = (nc / m, nc % m);
                let bias = self.bias.as_ref().and_then(|b| b.get(c)).copied().unwrap_or(0.0);
                let sc = scale.get(c).copied().unwrap_or(0.0);
                let dst = &mut y[n * m * p..(n + 1) * m * p];
                for (i, &v) in plane.iter().enumerate() {
                    dst[c * yst[0] + i * yst[1]] = self.act.apply(v * sc + bias);
                }
            }
        } else {
            let (groups, cg) = (s.groups, s.in_channels / s.groups.max(1));
            let mg = m / groups.max(1);
            let mut c = vec![0f32; p * mg];
            let hw = s.in_h * s.in_w;
            let xh: &[u8] = match self.layout {
                ConvLayout::Nhwc => &self.xq,
                ConvLayout::Nchw => {
                    self.xt.resize(self.xq.len(), 0);
                    for (src, dst) in
                        self.xq.chunks_exact(s.in_channels * hw.max(1)).zip(self.xt.chunks_exact_mut(s.in_channels * hw.max(1)))
                    {
                        for (ch, plane) in src.chunks_exact(hw.max(1)).enumerate() {
                            for (px, &v) in plane.iter().enumerate() {
                                dst[px * s.in_channels + ch] = v;
                            }
                        }
                    }
                    &self.xt
                }
            };
            for n in 0..s.batch {
                for (g, packed) in self.packed.iter().enumerate() {
                    self.a.gather(p, packed.k(), &q, |r, row| im2col_row(&geo, xh, n, g * cg, cg, r, row)).map_err(|e| e.to_string())?;
                    let cols = g * mg..(g + 1) * mg;
                    let bias = self.bias.as_ref().and_then(|b| b.get(cols.clone()));
                    let epi = QEpilogue { scale: scale.get(cols).ok_or("w_scale is too short")?, bias, act: self.act };
                    if self.layout == ConvLayout::Nhwc && groups == 1 {
                        let dst = &mut y[n * m * p..(n + 1) * m * p];
                        qgemm(&self.a, packed, &epi, dst, &params).map_err(|e| e.to_string())?;
                        continue;
                    }
                    qgemm(&self.a, packed, &epi, &mut c, &params).map_err(|e| e.to_string())?;
                    let dst = &mut y[n * m * p..(n + 1) * m * p];
                    for (px, row) in c.chunks_exact(mg.max(1)).enumerate() {
                        for (j, &v) in row.iter().enumerate() {
                            dst[(g * mg + j) * yst[0] + px * yst[1]] = v;
                        }
                    }
                }
            }
        }
        let shape = match self.layout {
            ConvLayout::Nchw => vec![s.batch, m, oh, ow],
            ConvLayout::Nhwc => vec![s.batch, oh, ow, m],
        };
        Tensor::from_vec(shape, y).map_err(|e| e.to_string())
    }
}

/// Output channels `m0..m0 + mg` of ONNX weights `[M][cg][taps]` as `[mg][taps][cg]`.
fn taps_last<T: Copy>(w: &[T], m0: usize, mg: usize, cg: usize, taps: usize) -> Result<Vec<T>, String> {
    let kg = cg * taps;
    let src = w.get(m0 * kg..(m0 + mg) * kg).ok_or("W is too short")?;
    let mut out = Vec::with_capacity(src.len());
    for per_m in src.chunks_exact(kg.max(1)) {
        for t in 0..taps {
            out.extend((0..cg).filter_map(|c| per_m.get(c * taps + t).copied()));
        }
    }
    Ok(out)
}

/// What the im2col and depthwise loops read: the spec, output size, X's strides and the u8
/// zero point that padding reads.
struct Geom {
    s: Conv2dSpec,
    ow: usize,
    xst: [usize; 3],
    za: i32,
}

impl Geom {
    /// The input row / column under output `(o, kernel tap)` along axis `i`, if inside.
    fn src(&self, i: usize, o: usize, tap: usize) -> Option<usize> {
        let len = if i == 0 { self.s.in_h } else { self.s.in_w };
        (o * self.s.stride[i] + tap * self.s.dilation[i]).checked_sub(self.s.pads[i]).filter(|&v| v < len)
    }

    fn image(&self, n: usize) -> usize {
        n * self.s.in_channels * self.s.in_h * self.s.in_w
    }
}

/// Row `r` (output pixel) of the im2col of image `n` of the NHWC `xh`, channels
/// `c0..c0 + cg`, in the packed weights' `(ky, kx, channel)` order: one channel run per tap.
fn im2col_row(g: &Geom, xh: &[u8], n: usize, c0: usize, cg: usize, r: usize, row: &mut [u8]) {
    let (oy, ox) = (r / g.ow.max(1), r % g.ow.max(1));
    let [kh, kw] = g.s.kernel;
    let pad = g.za.clamp(0, 255) as u8;
    let (base, ch) = (g.image(n), g.s.in_channels);
    for (tap, dst) in row.chunks_exact_mut(cg.max(1)).enumerate().take(kh * kw) {
        let (ky, kx) = (tap / kw.max(1), tap % kw.max(1));
        let src = match (g.src(0, oy, ky), g.src(1, ox, kx)) {
            (Some(iy), Some(ix)) => {
                let at = base + (iy * g.s.in_w + ix) * ch + c0;
                xh.get(at..at + cg)
            }
            _ => None,
        };
        match src {
            Some(src) => dst.copy_from_slice(src),
            None => dst.fill(pad),
        }
    }
}

/// One depthwise output plane (`nc` = image * channels + channel) as i32 sums of
/// `(x - za)(w - zw)`, converted to f32 (the epilogue follows in the caller): per output row,
/// each tap adds its input run (the columns whose input is inside) into a row of sums.
fn depthwise_plane(g: &Geom, xq: &[u8], w: &[i32], nc: usize, plane: &mut [f32]) {
    let ch = g.s.in_channels.max(1);
    let (n, c) = (nc / ch, nc % ch);
    let [kh, kw] = g.s.kernel;
    let (sx, dx, pl, in_w) = (g.s.stride[1], g.s.dilation[1], g.s.pads[1], g.s.in_w);
    let wc = w.get(c * kh * kw..(c + 1) * kh * kw).unwrap_or_default();
    let base = g.image(n) + c * g.xst[0];
    let ow = g.ow.max(1);
    let mut acc = vec![0i32; ow];
    for (oy, out_row) in plane.chunks_exact_mut(ow).enumerate() {
        acc.fill(0);
        for ky in 0..kh {
            let Some(iy) = g.src(0, oy, ky) else { continue };
            let Some(row) = xq.get(base + iy * g.xst[1]..) else { continue };
            for kx in 0..kw {
                let wv = wc.get(ky * kw + kx).copied().unwrap_or(0);
                // Output columns whose input column ox sx + kx dx - pl lies in [0, in_w).
                let off = kx * dx;
                let lo = pl.saturating_sub(off).div_ceil(sx.max(1));
                let hi = (in_w + pl).checked_sub(off).map_or(0, |e| e.div_ceil(sx.max(1))).min(ow);
                if wv == 0 || lo >= hi {
                    continue;
                }
                let step = sx * g.xst[2];
                let Some(src) = row.get((lo * sx + off - pl) * g.xst[2]..) else { continue };
                let za = g.za;
                let dst = &mut acc[lo..hi];
                if step == 1 {
                    for (a, &v) in dst.iter_mut().zip(src) {
                        *a = a.wrapping_add((i32::from(v) - za).wrapping_mul(wv));
                    }
                } else {
                    for (a, &v) in dst.iter_mut().zip(src.iter().step_by(step.max(1))) {
                        *a = a.wrapping_add((i32::from(v) - za).wrapping_mul(wv));
                    }
                }
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = a as f32;
        }
    }
}

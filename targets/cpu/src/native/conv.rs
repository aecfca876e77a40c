//! `Conv` / `kiln::FusedConv` (2-D, f32, constant weights) on the CPU convolution kernels.

use super::{Dims, Lowered, activation, bound_shape, constant, dtype_of, filler, pick, step_int, step_ints, step_str, tune};
use crate::kernels::{Activation, Conv2dSpec, ConvLayout, ConvWeights, conv_candidates, conv2d};
use kiln_ir::{Graph, Node};
use kiln_target::{Step, TargetError, Tuner};
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.conv2d";

/// Attributes of a 2-D convolution (ONNX order: pads are top, left, bottom, right).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Geometry {
    strides: [usize; 2],
    dilations: [usize; 2],
    pads: [usize; 4],
    pub(super) groups: usize,
}

fn pair(v: Option<Vec<i64>>, default: usize) -> Option<[usize; 2]> {
    match v {
        None => Some([default; 2]),
        Some(v) if v.len() == 2 && v.iter().all(|&x| x >= 1) => Some([v[0] as usize, v[1] as usize]),
        Some(_) => None,
    }
}

pub(super) fn geometry(
    ints: impl Fn(&str) -> Option<Vec<i64>>,
    int: impl Fn(&str) -> Option<i64>,
    auto_pad: Option<String>,
) -> Option<Geometry> {
    if !matches!(auto_pad.as_deref(), None | Some("NOTSET") | Some("VALID")) {
        return None; // SAME_* pads depend on the input size: left to the reference kernel
    }
    let pads = match ints("pads") {
        None => [0; 4],
        Some(p) if p.len() == 4 && p.iter().all(|&x| x >= 0) => [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize],
        Some(_) => return None,
    };
    let groups = int("group").unwrap_or(1);
    (groups >= 1).then_some(())?;
    Some(Geometry { strides: pair(ints("strides"), 1)?, dilations: pair(ints("dilations"), 1)?, pads, groups: groups as usize })
}

/// The `layout` attribute of a FusedConv (plain Conv is NCHW); None for one we do not know.
pub(super) fn layout_of(attr: Option<&str>) -> Option<ConvLayout> {
    match attr {
        None | Some("NCHW") => Some(ConvLayout::Nchw),
        Some("NHWC") => Some(ConvLayout::Nhwc),
        Some(_) => None,
    }
}

/// The spec for input dims `x` in `layout`.
pub(super) fn spec_in(x: &[usize], w: &[usize], geo: &Geometry, layout: ConvLayout) -> Option<Conv2dSpec> {
    match (layout, x) {
        (ConvLayout::Nhwc, &[n, h, wd, c]) => spec(&[n, c, h, wd], w, geo),
        (ConvLayout::Nhwc, _) => None,
        (ConvLayout::Nchw, _) => spec(x, w, geo),
    }
}

fn spec(x: &[usize], w: &[usize], geo: &Geometry) -> Option<Conv2dSpec> {
    let (&[n, c, h, wd], &[o, cg, kh, kw]) = (x, w) else { return None };
    (c == cg * geo.groups && o % geo.groups == 0).then_some(())?;
    let s = Conv2dSpec::new(n, c, [h, wd], o, [kh, kw]).stride(geo.strides).dilation(geo.dilations).pads(geo.pads).groups(geo.groups);
    s.out_hw().ok()?;
    Some(s)
}

pub fn lower(g: &Graph, node: &Node, dims: &Dims, tuner: &mut Tuner) -> Result<Option<Lowered>, TargetError> {
    if dtype_of(g, node, 0) != Some(DType::F32) {
        return Ok(None);
    }
    let Some(w) = constant(g, node, 1, DType::F32).filter(|w| w.rank() == 4) else { return Ok(None) };
    let out_channels = w.shape()[0];
    if let Some(v) = node.inputs.get(2).copied().flatten() {
        let ok = g.initializers.get(&v).is_some_and(|b| b.dtype() == DType::F32 && b.len() == out_channels);
        if !ok {
            return Ok(None);
        }
    }
    let Some(act) = activation::from_node(node) else { return Ok(None) };
    let Some(geo) = geometry(|k| node.attr_ints(k).map(<[i64]>::to_vec), |k| node.attr_int(k), node.attr_str("auto_pad").map(String::from))
    else {
        return Ok(None);
    };
    if node.attr_ints("kernel_shape").is_some_and(|k| k != [w.shape()[2] as i64, w.shape()[3] as i64]) {
        return Ok(None);
    }
    let Some(layout) = layout_of(node.attr_str("layout")) else { return Ok(None) };
    let variant = match bound_shape(g, node, 0, dims).and_then(|x| spec_in(&x, w.shape(), &geo, layout)) {
        None => "default".to_string(),
        Some(s) => tune_conv(tuner, &s, w, act, layout)?,
    };
    Ok(Some(Lowered { kernel: KERNEL, variant }))
}

fn tune_conv(tuner: &mut Tuner, s: &Conv2dSpec, w: &Tensor, act: Activation, layout: ConvLayout) -> Result<String, TargetError> {
    let cands = conv_candidates(s, layout, crate::device::cores());
    let names: Vec<String> = cands.iter().map(|c| format!("{c:?}")).collect();
    let (Ok(w32), Ok(inl), Ok(outl)) = (w.as_slice::<f32>(), s.input_len(), s.output_len()) else { return Ok("default".into()) };
    // One set of weights per distinct layout the candidates need (pre-packed panels for a
    // micro-backend pointwise candidate).
    let Ok(weights) = cands.iter().map(|c| ConvWeights::for_params(s, layout, w32, c)).collect::<Result<Vec<_>, _>>() else {
        return Ok("default".into());
    };
    let x = filler(inl);
    let mut y = vec![0f32; outl];
    let tag = if layout == ConvLayout::Nhwc { " nhwc" } else { "" };
    let problem = format!(
        "n{} c{} {}x{} -> o{} k{}x{} s{:?} d{:?} p{:?} g{}{tag}",
        s.batch, s.in_channels, s.in_h, s.in_w, s.out_channels, s.kernel[0], s.kernel[1], s.stride, s.dilation, s.pads, s.groups
    );
    tune(tuner, KERNEL, problem, &names, |i| conv2d(&x, &weights[i], None, act, &mut y, &cands[i]).map_err(|e| e.to_string()))
}

/// A loaded convolution step: weights, bias, geometry, activation, and the weights laid out
/// for the last input shape seen.
pub struct ConvStep {
    weight: Vec<f32>,
    wshape: Vec<usize>,
    bias: Option<Vec<f32>>,
    geo: Geometry,
    act: Activation,
    layout: ConvLayout,
    packed: Option<(Conv2dSpec, ConvWeights)>,
}

impl ConvStep {
    pub fn load(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Result<ConvStep, String> {
        let geo = geometry(|k| step_ints(step, k), |k| step_int(step, k), step_str(step, "auto_pad").map(String::from))
            .ok_or("unsupported convolution attributes")?;
        let act = activation::from_step(step).ok_or("unsupported activation")?;
        let w = step.inputs.get(1).copied().flatten().and_then(weight).ok_or("weights are not a constant")?;
        let bias = match step.inputs.get(2).copied().flatten() {
            None => None,
            Some(v) => Some(weight(v).ok_or("bias is not a constant")?.into_vec::<f32>().map_err(|e| e.to_string())?),
        };
        let layout = layout_of(step_str(step, "layout")).ok_or("unknown layout")?;
        let wshape = w.shape().to_vec();
        Ok(ConvStep { weight: w.into_vec::<f32>().map_err(|e| e.to_string())?, wshape, bias, geo, act, layout, packed: None })
    }

    /// The output comes from `pool`: every convolution path writes all of it.
    pub fn run(&mut self, inputs: &[Option<&Tensor>], variant: &str, pool: &mut crate::exec::Pool) -> Result<Tensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input X is missing")?;
        let s = spec_in(x.shape(), &self.wshape, &self.geo, self.layout)
            .ok_or_else(|| format!("input shape {:?} does not fit weights {:?} and the convolution attributes", x.shape(), self.wshape))?;
        let params = pick(&conv_candidates(&s, self.layout, crate::device::cores()), variant).ok_or("no convolution candidate")?;
        if self.packed.as_ref().is_none_or(|(p, _)| *p != s) {
            self.packed = Some((s, ConvWeights::for_params(&s, self.layout, &self.weight, &params).map_err(|e| e.to_string())?));
        }
        let Some((_, w)) = &self.packed else { return Err("weights were not prepared".into()) };
        let [oh, ow] = s.out_hw().map_err(|e| e.to_string())?;
        let mut y = pool.take(s.output_len().map_err(|e| e.to_string())?);
        conv2d(x.as_slice::<f32>().map_err(|e| e.to_string())?, w, self.bias.as_deref(), self.act, &mut y, &params)
            .map_err(|e| e.to_string())?;
        let shape = match self.layout {
            ConvLayout::Nchw => vec![s.batch, s.out_channels, oh, ow],
            ConvLayout::Nhwc => vec![s.batch, oh, ow, s.out_channels],
        };
        Tensor::from_vec(shape, y).map_err(|e| e.to_string())
    }
}

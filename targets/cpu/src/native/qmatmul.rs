//! `kiln::QMatMul` (A `[.., K]` f32, constant int8/uint8 `[K, N]` weights) on the int8 GEMM:
//! A quantized on the fly (static or dynamic, per tensor), weights packed at load, scales +
//! bias + activation fused into the GEMM's epilogue. Also the operand reading QConv shares.

use super::{Dims, Lowered, activation, bound_shape, dtype_of, filler, pick, tune};
use crate::kernels::{
    Activation, QEpilogue, QGemmParams, QInts, QIsa, QPackedB, QuantParams, QuantizedA, qgemm, qgemm_candidates, qpack_b,
};
use kiln_ir::{Graph, Node};
use kiln_target::{Step, TargetError, Tuner};
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.qmatmul";

/// The activation's quantization: static (scale, zero point and its type) or dynamic.
#[derive(Clone, Copy, Debug)]
pub(super) enum XQuant {
    Static(QuantParams),
    Dynamic,
}

impl XQuant {
    /// The parameters for one call on `x`.
    pub(super) fn params(&self, x: &[f32], isa: QIsa) -> QuantParams {
        match self {
            XQuant::Static(p) => *p,
            XQuant::Dynamic => QuantParams::dynamic(x, isa),
        }
    }

    /// For tuning keys.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            XQuant::Static(_) => "static",
            XQuant::Dynamic => "dynamic",
        }
    }
}

/// Inputs 1..=6 of a QMatMul / QConv, read from constants: the activation's quantization,
/// the integer weights, one scale and zero point per output channel, the bias.
pub(super) struct QOperands {
    pub x: XQuant,
    pub w: Tensor,
    pub w_scale: Vec<f32>,
    pub w_zero: Vec<i32>,
    pub bias: Option<Vec<f32>>,
}

impl QOperands {
    /// `get(i)` is input i's constant (None: absent or not a constant); `present(i)` whether
    /// input i is given at all. `channels_axis` of W holds the output channels.
    pub(super) fn read(
        get: &dyn Fn(usize) -> Option<Tensor>,
        present: &dyn Fn(usize) -> bool,
        channels_axis: usize,
    ) -> Result<QOperands, String> {
        let x = match (present(1), present(2)) {
            (false, false) => XQuant::Dynamic,
            (false, true) => return Err("x_zero_point without x_scale".into()),
            (true, _) => {
                let s = get(1).ok_or("x_scale is not a constant")?;
                let scale = scalar_f32(&s).ok_or("x_scale must be one f32")?;
                let (zero_point, signed) = match present(2).then(|| get(2)) {
                    None => (0, false),
                    Some(None) => return Err("x_zero_point is not a constant".into()),
                    Some(Some(z)) => match (z.dtype(), z.len()) {
                        (DType::U8, 1) => (i32::from(z.as_slice::<u8>().map_err(|e| e.to_string())?[0]), false),
                        (DType::I8, 1) => (i32::from(z.as_slice::<i8>().map_err(|e| e.to_string())?[0]), true),
                        _ => return Err(format!("x_zero_point must be one u8 or i8, got {} {:?}", z.dtype(), z.shape())),
                    },
                };
                XQuant::Static(QuantParams { scale, zero_point, signed })
            }
        };
        let w = get(3).ok_or("W is not a constant")?;
        if !matches!(w.dtype(), DType::I8 | DType::U8) {
            return Err(format!("W must be int8 or uint8, got {}", w.dtype()));
        }
        let channels = *w.shape().get(channels_axis).ok_or("W has too few dimensions")?;
        let w_scale = get(4).ok_or("w_scale is not a constant")?;
        if w_scale.dtype() != DType::F32 || !(w_scale.len() == 1 || w_scale.len() == channels) {
            return Err(format!("w_scale must be f32 of 1 or {channels} elements, got {} {:?}", w_scale.dtype(), w_scale.shape()));
        }
        let w_scale = w_scale.as_slice::<f32>().map_err(|e| e.to_string())?;
        let w_zero: Vec<i32> = match present(5).then(|| get(5)) {
            None => vec![0],
            Some(None) => return Err("w_zero_point is not a constant".into()),
            Some(Some(z)) if z.dtype() == w.dtype() && z.len() == w_scale.len() => match z.dtype() {
                DType::I8 => z.as_slice::<i8>().map_err(|e| e.to_string())?.iter().map(|&v| i32::from(v)).collect(),
                _ => z.as_slice::<u8>().map_err(|e| e.to_string())?.iter().map(|&v| i32::from(v)).collect(),
            },
            Some(Some(z)) => return Err(format!("w_zero_point ({} {:?}) must match W's type and w_scale's size", z.dtype(), z.shape())),
        };
        let bias = match present(6).then(|| get(6)) {
            None => None,
            Some(Some(b)) if b.dtype() == DType::F32 && b.len() == channels => {
                Some(b.as_slice::<f32>().map_err(|e| e.to_string())?.to_vec())
            }
            Some(_) => return Err(format!("bias must be a constant f32 of {channels} elements")),
        };
        let w_scale = (0..channels).map(|j| w_scale.get(j).or(w_scale.first()).copied().unwrap_or(0.0)).collect();
        Ok(QOperands { x, w, w_scale, w_zero, bias })
    }

    /// The weights as the packer takes them.
    pub(super) fn ints(&self) -> Result<QInts<'_>, String> {
        Ok(match self.w.dtype() {
            DType::I8 => QInts::I8(self.w.as_slice::<i8>().map_err(|e| e.to_string())?),
            _ => QInts::U8(self.w.as_slice::<u8>().map_err(|e| e.to_string())?),
        })
    }
}

fn scalar_f32(t: &Tensor) -> Option<f32> {
    (t.dtype() == DType::F32 && t.len() == 1).then(|| t.as_slice::<f32>().ok().and_then(|s| s.first().copied())).flatten()
}

/// A graph node's operands from its initializers.
pub(super) fn graph_operands(g: &Graph, node: &Node, channels_axis: usize) -> Result<QOperands, String> {
    let get = |i: usize| node.inputs.get(i).copied().flatten().and_then(|v| g.initializers.get(&v).cloned());
    let present = |i: usize| node.inputs.get(i).copied().flatten().is_some();
    QOperands::read(&get, &present, channels_axis)
}

/// A plan step's operands from its weights.
pub(super) fn step_operands(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>, channels_axis: usize) -> Result<QOperands, String> {
    let get = |i: usize| step.inputs.get(i).copied().flatten().and_then(weight);
    let present = |i: usize| step.inputs.get(i).copied().flatten().is_some();
    QOperands::read(&get, &present, channels_axis)
}

pub fn lower(g: &Graph, node: &Node, dims: &Dims, tuner: &mut Tuner) -> Result<Option<Lowered>, TargetError> {
    if dtype_of(g, node, 0) != Some(DType::F32) {
        return Ok(None);
    }
    let Some(act) = activation::from_node(node) else { return Ok(None) };
    let Ok(ops) = graph_operands(g, node, 1) else { return Ok(None) };
    let Ok(mut step) = QMatMulStep::new(ops, act) else { return Ok(None) };
    let variant = match bound_shape(g, node, 0, dims) {
        Some(a) if a.len() >= 2 && a.last() == Some(&step.packed.k()) => {
            let m: usize = a[..a.len() - 1].iter().product();
            let (k, n) = (step.packed.k(), step.packed.n());
            let cands = qgemm_candidates(m, n, k, crate::device::cores());
            let names: Vec<String> = cands.iter().map(|c| format!("{c:?}")).collect();
            let x = Tensor::from_vec(vec![m, k], filler(m * k)).map_err(|e| TargetError::Lower {
                target: "cpu".into(),
                node: node.label(),
                op: node.qualified_op(),
                reason: e.to_string(),
            })?;
            tune(tuner, KERNEL, format!("m={m},k={k},n={n},{}", step.x.kind()), &names, |i| {
                step.run(&[Some(&x)], &names[i], &mut crate::exec::Pool::default()).map(|_| ())
            })?
        }
        _ => "default".to_string(),
    };
    Ok(Some(Lowered { kernel: KERNEL, variant }))
}

/// A loaded QMatMul: packed weights, per-column weight scales, bias, activation.
pub struct QMatMulStep {
    x: XQuant,
    packed: QPackedB,
    w_scale: Vec<f32>,
    bias: Option<Vec<f32>>,
    act: Activation,
    a: QuantizedA,
    scale: Vec<f32>,
}

impl QMatMulStep {
    fn new(ops: QOperands, act: Activation) -> Result<QMatMulStep, String> {
        let (k, n) = match ops.w.shape() {
            &[k, n] => (k, n),
            s => return Err(format!("QMatMul weights must be [K, N], got {s:?}")),
        };
        let packed = qpack_b(ops.ints()?, k, n, n, 1, &ops.w_zero).map_err(|e| e.to_string())?;
        Ok(QMatMulStep { x: ops.x, packed, w_scale: ops.w_scale, bias: ops.bias, act, a: QuantizedA::default(), scale: Vec::new() })
    }

    pub fn load(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Result<QMatMulStep, String> {
        let act = activation::from_step(step).ok_or("unsupported activation")?;
        QMatMulStep::new(step_operands(step, weight, 1)?, act)
    }

    /// The output comes from `pool`: the int8 GEMM writes every element of it.
    pub fn run(&mut self, inputs: &[Option<&Tensor>], variant: &str, pool: &mut crate::exec::Pool) -> Result<Tensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input X is missing")?;
        let (k, n) = (self.packed.k(), self.packed.n());
        if x.rank() < 2 || x.shape().last() != Some(&k) {
            return Err(format!("X has shape {:?}; its last dimension must be {k}", x.shape()));
        }
        let xs = x.as_slice::<f32>().map_err(|e| e.to_string())?;
        let m: usize = x.shape()[..x.rank() - 1].iter().product();
        let params: QGemmParams = pick(&qgemm_candidates(m, n, k, crate::device::cores()), variant).ok_or("no int8 GEMM candidate")?;
        let q = self.x.params(xs, params.isa);
        self.a.quantize(xs, m, k, &q, params.isa, params.threads).map_err(|e| e.to_string())?;
        self.scale.clear();
        self.scale.extend(self.w_scale.iter().map(|&w| q.scale * w));
        let mut c = pool.take(m * n);
        let epi = QEpilogue { scale: &self.scale, bias: self.bias.as_deref(), act: self.act };
        qgemm(&self.a, &self.packed, &epi, &mut c, &params).map_err(|e| e.to_string())?;
        let mut shape = x.shape().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = n;
        }
        Tensor::from_vec(shape, c).map_err(|e| e.to_string())
    }
}

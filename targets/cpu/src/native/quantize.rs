//! `QuantizeLinear` (f32 -> u8/i8) and `DequantizeLinear` (u8/i8 -> f32), per tensor or per
//! axis, with constant scales and zero points: the graph edges of imported QDQ models. The
//! quantization is the int8 GEMM's (bit-exact with the reference); blocked scales, other
//! types and runtime scales stay on the reference kernel.

use super::{dtype_of, step_int};
use crate::kernels::{QIsa, QuantParams, quantize_slice};
use kiln_ir::{Graph, Node};
use kiln_target::Step;
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.quantize";

/// Which node ops this file covers.
pub fn covers(node: &Node) -> bool {
    node.domain.is_empty() && matches!(node.op_type.as_str(), "QuantizeLinear" | "DequantizeLinear")
}

/// A loaded step: direction, axis, per-slice scales and zero points, the integer type.
pub struct QuantizeStep {
    quantize: bool,
    axis: i64,
    scales: Vec<f32>,
    zeros: Vec<i32>,
    signed: bool,
}

pub fn lower(g: &Graph, node: &Node) -> Option<super::Lowered> {
    let get = |i: usize| node.inputs.get(i).copied().flatten().and_then(|v| g.initializers.get(&v).cloned());
    let present = |i: usize| node.inputs.get(i).copied().flatten().is_some();
    let quantize = node.op_type == "QuantizeLinear";
    let x = dtype_of(g, node, 0)?;
    let ok_x = if quantize { x == DType::F32 } else { matches!(x, DType::U8 | DType::I8) };
    let attrs_ok = node.attr_int("block_size").unwrap_or(0) == 0
        && node.attr_int("output_dtype").unwrap_or(0) == 0
        && node.attr_int("saturate").unwrap_or(1) == 1;
    let step = QuantizeStep::new(quantize, node.attr_int("axis").unwrap_or(1), &get, &present).ok()?;
    (ok_x && attrs_ok && (quantize || !present(2) || step.signed == (x == DType::I8)))
        .then(|| super::Lowered { kernel: KERNEL, variant: "default".into() })
}

impl QuantizeStep {
    fn new(
        quantize: bool,
        axis: i64,
        get: &dyn Fn(usize) -> Option<Tensor>,
        present: &dyn Fn(usize) -> bool,
    ) -> Result<QuantizeStep, String> {
        let s = get(1).ok_or("the scale is not a constant")?;
        if s.dtype() != DType::F32 || s.rank() > 1 {
            return Err("the scale must be f32, a scalar or 1-D".into());
        }
        let scales = s.as_slice::<f32>().map_err(|e| e.to_string())?.to_vec();
        let (zeros, signed) = match present(2).then(|| get(2)) {
            None => (vec![0; scales.len()], false),
            Some(Some(z)) if z.len() == scales.len() && z.dtype() == DType::U8 => {
                (z.as_slice::<u8>().map_err(|e| e.to_string())?.iter().map(|&v| i32::from(v)).collect(), false)
            }
            Some(Some(z)) if z.len() == scales.len() && z.dtype() == DType::I8 => {
                (z.as_slice::<i8>().map_err(|e| e.to_string())?.iter().map(|&v| i32::from(v)).collect(), true)
            }
            Some(_) => return Err("the zero point must be a constant u8 or i8 shaped like the scale".into()),
        };
        Ok(QuantizeStep { quantize, axis, scales, zeros, signed })
    }

    pub fn load(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Result<QuantizeStep, String> {
        let get = |i: usize| step.inputs.get(i).copied().flatten().and_then(weight);
        let present = |i: usize| step.inputs.get(i).copied().flatten().is_some();
        QuantizeStep::new(step.op == "QuantizeLinear", step_int(step, "axis").unwrap_or(1), &get, &present)
    }

    /// (outer, slices, inner) of x for the per-slice parameters: one slice when per tensor.
    fn runs(&self, shape: &[usize]) -> Result<(usize, usize, usize), String> {
        let total: usize = shape.iter().product();
        if self.scales.len() == 1 {
            return Ok((1, 1, total));
        }
        let rank = shape.len() as i64;
        let ax = if self.axis < 0 { self.axis + rank } else { self.axis };
        let ax = usize::try_from(ax)
            .ok()
            .filter(|&a| a < shape.len())
            .ok_or_else(|| format!("axis {} is out of range for {shape:?}", self.axis))?;
        if shape[ax] != self.scales.len() {
            return Err(format!("{} scales for axis {ax} of {shape:?}", self.scales.len()));
        }
        Ok((shape[..ax].iter().product(), shape[ax], shape[ax + 1..].iter().product()))
    }

    pub fn run(&mut self, inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input x is missing")?;
        let (outer, slices, inner) = self.runs(x.shape())?;
        let shape = x.shape().to_vec();
        let param = |i: usize| (self.scales.get(i % slices).copied().unwrap_or(0.0), self.zeros.get(i % slices).copied().unwrap_or(0));
        if self.quantize {
            let xs = x.as_slice::<f32>().map_err(|e| e.to_string())?;
            let mut q = vec![0u8; xs.len()];
            for (i, (src, dst)) in xs.chunks(inner.max(1)).zip(q.chunks_mut(inner.max(1))).enumerate().take(outer * slices) {
                let (scale, zero_point) = param(i);
                quantize_slice(src, &QuantParams { scale, zero_point, signed: self.signed }, QIsa::Avx512Vnni, dst)
                    .map_err(|e| e.to_string())?;
            }
            return if self.signed {
                Tensor::from_vec(shape, q.iter().map(|&v| (i32::from(v) - 128) as i8).collect::<Vec<i8>>()).map_err(|e| e.to_string())
            } else {
                Tensor::from_vec(shape, q).map_err(|e| e.to_string())
            };
        }
        let qs: Vec<i32> = match x.dtype() {
            DType::U8 => x.as_slice::<u8>().map_err(|e| e.to_string())?.iter().map(|&v| i32::from(v)).collect(),
            DType::I8 => x.as_slice::<i8>().map_err(|e| e.to_string())?.iter().map(|&v| i32::from(v)).collect(),
            d => return Err(format!("DequantizeLinear of {d}")),
        };
        let mut y = vec![0f32; qs.len()];
        for (i, (src, dst)) in qs.chunks(inner.max(1)).zip(y.chunks_mut(inner.max(1))).enumerate() {
            let (scale, zero) = param(i);
            // (q - zp) is an integer of at most 9 bits, so the one f32 rounding of the product
            // is the reference's f64 product rounded to f32.
            for (d, &q) in dst.iter_mut().zip(src) {
                *d = (q - zero) as f32 * scale;
            }
        }
        Tensor::from_vec(shape, y).map_err(|e| e.to_string())
    }
}

//! Inference `BatchNormalization` (f32, constant statistics) that no convolution absorbed:
//! folded at load into one multiply-add per channel, run on the chain kernel.

use super::{Lowered, constant, dtype_of, step_float, step_int};
use crate::kernels::{Binary, ChainParams, Operand, Step as ChainStep, chain_candidates, run_chain_inplace};
use kiln_ir::{Graph, Node};
use kiln_target::Step;
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.batchnorm";

pub fn lower(g: &Graph, node: &Node) -> Option<Lowered> {
    let one_output = node.outputs.iter().filter(|o| o.is_some()).count() == 1;
    let consts = (1..5).all(|i| constant(g, node, i, DType::F32).is_some());
    (one_output && consts && node.attr_int("training_mode").unwrap_or(0) == 0 && dtype_of(g, node, 0) == Some(DType::F32))
        .then(|| Lowered { kernel: KERNEL, variant: "default".into() })
}

pub struct BatchNormStep {
    /// `scale / sqrt(var + eps)` and `bias - mean * that`, per channel.
    mul: Vec<f32>,
    add: Vec<f32>,
}

/// A `cpu.batchnorm` step's statistics folded into one multiply-add per channel:
/// (`scale / sqrt(var + eps)`, `B - mean * that`), or why the step cannot be folded. The wgpu
/// target folds its batchnorm steps with this too.
pub fn fold(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Result<(Vec<f32>, Vec<f32>), String> {
    if step_int(step, "training_mode").unwrap_or(0) != 0 {
        return Err("training mode is not supported".into());
    }
    let eps = step_float(step, "epsilon").unwrap_or(1e-5);
    let get = |i: usize, what: &str| -> Result<Vec<f32>, String> {
        let t = step.inputs.get(i).copied().flatten().and_then(weight).ok_or_else(|| format!("{what} is not a constant"))?;
        t.into_vec::<f32>().map_err(|e| format!("{what}: {e}"))
    };
    let (scale, bias, mean, var) = (get(1, "scale")?, get(2, "B")?, get(3, "mean")?, get(4, "var")?);
    let c = scale.len();
    if bias.len() != c || mean.len() != c || var.len() != c {
        return Err(format!("scale, B, mean and var must have one value per channel ({c})"));
    }
    let mul: Vec<f32> = scale.iter().zip(&var).map(|(s, v)| s / (v + eps).sqrt()).collect();
    let add = bias.iter().zip(&mean).zip(&mul).map(|((b, m), k)| b - m * k).collect();
    Ok((mul, add))
}

impl BatchNormStep {
    pub fn load(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Result<BatchNormStep, String> {
        let (mul, add) = fold(step, weight)?;
        Ok(BatchNormStep { mul, add })
    }

    pub fn run(&mut self, inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input X is missing")?;
        let c = self.mul.len();
        if x.rank() < 2 || x.shape()[1] != c {
            return Err(format!("X has shape {:?}; dimension 1 must be the {c} channels", x.shape()));
        }
        let mut data = x.as_slice::<f32>().map_err(|e| e.to_string())?.to_vec();
        let inner: usize = x.shape()[2..].iter().product();
        if data.is_empty() || inner == 0 {
            return Tensor::from_vec(x.shape().to_vec(), data).map_err(|e| e.to_string());
        }
        let params: ChainParams =
            chain_candidates(data.len() / x.shape()[0].max(1), crate::device::cores()).first().copied().unwrap_or_default();
        let steps = [ChainStep::binary(Binary::Mul, Operand::Col(&self.mul)), ChainStep::binary(Binary::Add, Operand::Col(&self.add))];
        for image in data.chunks_mut(c * inner) {
            run_chain_inplace(image, inner, &steps, &params).map_err(|e| e.to_string())?;
        }
        Tensor::from_vec(x.shape().to_vec(), data).map_err(|e| e.to_string())
    }
}

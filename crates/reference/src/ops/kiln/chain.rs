//! kiln::Chain: a run of elementwise ops applied to one value, `y = op_k(... op_1(x))`.
//!
//! Inputs: X, then the second operands of the binary ops. Attributes, one entry per op:
//! `ops` (strings: Add, Sub, Mul, Div, Max, Min, Relu, Sigmoid, Tanh, HardSwish, HardSigmoid,
//! LeakyRelu, Clip, Gelu, GeluTanh, Neg, Abs, Sqrt, Exp, Log, Reciprocal), `operands` (ints:
//! the input index of a binary op's other operand, -1 for unary ops), `swap` (ints: 1 when the
//! running value is the right-hand side), `alpha` and `beta` (floats: HardSigmoid's alpha and
//! beta, LeakyRelu's alpha, Clip's min and max; 0 otherwise). The output has X's shape: the
//! pass writing it only chains ops whose other operand broadcasts into the running value.

use super::common::step;
use crate::{OpCtx, OpError, bail};
use kiln_ir::Attr;
use kiln_tensor::Tensor;
use std::collections::BTreeMap;

pub fn chain(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let Some(Some(x)) = inputs.first() else { bail!("Chain needs its input X") };
    let ops: Vec<String> = match ctx.node.attrs.get("ops") {
        Some(Attr::Strings(v)) => v.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect(),
        _ => bail!("attribute 'ops' (strings) is required"),
    };
    let n = ops.len();
    let ints = |name: &str| -> Result<Vec<i64>, OpError> {
        match ctx.node.attr_ints(name) {
            Some(v) if v.len() == n => Ok(v.to_vec()),
            other => bail!("attribute '{name}' must hold {n} ints, got {other:?}"),
        }
    };
    let floats = |name: &str| -> Result<Vec<f32>, OpError> {
        match ctx.node.attr_floats(name) {
            Some(v) if v.len() == n => Ok(v.to_vec()),
            other => bail!("attribute '{name}' must hold {n} floats, got {other:?}"),
        }
    };
    let (operands, swap, alpha, beta) = (ints("operands")?, ints("swap")?, floats("alpha")?, floats("beta")?);
    let mut acc: Tensor = (*x).clone();
    for i in 0..n {
        let op = ops[i].as_str();
        let f = |k: &str, v: f32| BTreeMap::from([(k.to_string(), Attr::Float(v))]);
        acc = match op {
            "Add" | "Sub" | "Mul" | "Div" | "Max" | "Min" => {
                let k = usize::try_from(operands[i]).ok().filter(|&k| k >= 1);
                let Some(Some(other)) = k.and_then(|k| inputs.get(k)) else {
                    bail!("op {i} ({op}) names operand {}, which is not an input", operands[i]);
                };
                let pair = if swap[i] != 0 { [Some(*other), Some(&acc)] } else { [Some(&acc), Some(*other)] };
                step(ctx, op, BTreeMap::new(), &pair)?
            }
            "HardSigmoid" => {
                let mut attrs = f("alpha", alpha[i]);
                attrs.insert("beta".into(), Attr::Float(beta[i]));
                step(ctx, op, attrs, &[Some(&acc)])?
            }
            "LeakyRelu" => step(ctx, op, f("alpha", alpha[i]), &[Some(&acc)])?,
            "Clip" => {
                let (lo, hi) = (Tensor::scalar(alpha[i]), Tensor::scalar(beta[i]));
                step(ctx, op, BTreeMap::new(), &[Some(&acc), Some(&lo), Some(&hi)])?
            }
            "Gelu" => step(ctx, op, BTreeMap::new(), &[Some(&acc)])?,
            "GeluTanh" => step(ctx, "Gelu", BTreeMap::from([("approximate".to_string(), Attr::String(b"tanh".to_vec()))]), &[Some(&acc)])?,
            "Relu" | "Sigmoid" | "Tanh" | "HardSwish" | "Neg" | "Abs" | "Sqrt" | "Exp" | "Log" | "Reciprocal" => step(ctx, op, BTreeMap::new(), &[Some(&acc)])?,
            other => bail!("op {i} ('{other}') is not an op Chain knows"),
        };
        if acc.shape() != x.shape() {
            bail!("op {i} ({op}) changed the shape from {:?} to {:?}; a chain keeps X's shape", x.shape(), acc.shape());
        }
    }
    Ok(vec![acc])
}

//! Elementwise f32 ops (Add, Sub, Mul, Div, Max, Min with numpy broadcasting; Relu, Sigmoid,
//! Tanh, HardSigmoid, HardSwish, LeakyRelu, Clip, Gelu, Neg, Abs, Sqrt, Exp, Log, Reciprocal)
//! on the fused-chain kernel: one pass over memory, vectorised for the chosen ISA.

use super::broadcast::{Pattern, broadcast_shape, expand, pattern};
use super::{Dims, Lowered, bound_shape, dtype_of, filler, pick, step_float, step_str, tune};
use crate::kernels::{Activation, Binary, ChainParams, Operand, Step as ChainStep, Unary, chain_candidates, run_chain_inplace};
use kiln_ir::{Graph, Node};
use kiln_target::{Step, TargetError, Tuner};
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.elementwise";

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Op {
    Unary(Unary),
    Binary(Binary),
}

/// The op of a node or step. `float(k)` reads a float attribute, `string(k)` a string one,
/// `clip` the (min, max) of Clip from attributes or constant inputs (None: not constant).
fn op_of(op: &str, float: &dyn Fn(&str) -> Option<f32>, string: &dyn Fn(&str) -> Option<String>, clip: Option<(f32, f32)>) -> Option<Op> {
    let act = |a| Some(Op::Unary(Unary::Act(a)));
    match op {
        "Add" => Some(Op::Binary(Binary::Add)),
        "Sub" => Some(Op::Binary(Binary::Sub)),
        "Mul" => Some(Op::Binary(Binary::Mul)),
        "Div" => Some(Op::Binary(Binary::Div)),
        "Max" => Some(Op::Binary(Binary::Max)),
        "Min" => Some(Op::Binary(Binary::Min)),
        "Relu" => act(Activation::Relu),
        "Sigmoid" => act(Activation::Sigmoid),
        "Tanh" => act(Activation::Tanh),
        "HardSwish" => act(Activation::HardSwish),
        "HardSigmoid" => act(Activation::HardSigmoid { alpha: float("alpha").unwrap_or(0.2), beta: float("beta").unwrap_or(0.5) }),
        "LeakyRelu" => act(Activation::LeakyRelu { alpha: float("alpha").unwrap_or(0.01) }),
        "Clip" => {
            let (min, max) = clip?;
            act(Activation::Clip { min, max })
        }
        "Gelu" => match string("approximate").as_deref().unwrap_or("none") {
            "none" => act(Activation::Gelu),
            "tanh" => act(Activation::GeluTanh),
            _ => None,
        },
        "Neg" => Some(Op::Unary(Unary::Neg)),
        "Abs" => Some(Op::Unary(Unary::Abs)),
        "Sqrt" => Some(Op::Unary(Unary::Sqrt)),
        "Exp" => Some(Op::Unary(Unary::Exp)),
        "Log" => Some(Op::Unary(Unary::Log)),
        "Reciprocal" => Some(Op::Unary(Unary::Recip)),
        _ => None,
    }
}

/// An op of a `kiln::Chain` (its names, with alpha / beta as the chain stores them).
pub(super) fn chain_op(name: &str, alpha: f32, beta: f32) -> Option<Op> {
    match name {
        "GeluTanh" => Some(Op::Unary(Unary::Act(Activation::GeluTanh))),
        "Gelu" => Some(Op::Unary(Unary::Act(Activation::Gelu))),
        "Clip" => Some(Op::Unary(Unary::Act(Activation::Clip { min: alpha, max: beta }))),
        _ => {
            let f = |k: &str| match k {
                "alpha" => Some(alpha),
                "beta" => Some(beta),
                _ => None,
            };
            op_of(name, &f, &|_| None, None)
        }
    }
}

/// Clip's bounds: attributes before opset 11, optional constant scalar inputs after.
fn clip_bounds(opset: i64, float: &dyn Fn(&str) -> Option<f32>, input: &dyn Fn(usize) -> Option<Option<f32>>) -> Option<(f32, f32)> {
    if opset < 11 {
        return Some((float("min").unwrap_or(f32::NEG_INFINITY), float("max").unwrap_or(f32::INFINITY)));
    }
    Some((input(1)?.unwrap_or(f32::NEG_INFINITY), input(2)?.unwrap_or(f32::INFINITY)))
}

/// Ops this step covers (the ai.onnx domain only).
pub fn covers(node: &Node) -> bool {
    node.domain.is_empty() && op_of(&node.op_type, &|_| None, &|_| Some("none".into()), Some((0.0, 0.0))).is_some()
}

pub fn lower(g: &Graph, node: &Node, dims: &Dims, tuner: &mut Tuner) -> Result<Option<Lowered>, TargetError> {
    let arity = node.inputs.iter().filter(|i| i.is_some()).count();
    let float = |k: &str| node.attr_float(k);
    let string = |k: &str| node.attr_str(k).map(String::from);
    let clip = clip_bounds(node.opset, &float, &|i| match node.inputs.get(i).copied().flatten() {
        None => Some(None),
        Some(v) => g
            .initializers
            .get(&v)
            .filter(|t| t.dtype() == DType::F32 && t.len() == 1)
            .and_then(|t| t.as_slice::<f32>().ok())
            .map(|s| s.first().copied()),
    });
    let Some(op) = op_of(&node.op_type, &float, &string, clip) else { return Ok(None) };
    let data_inputs = if node.op_type == "Clip" { 1 } else { arity };
    let ok_arity = match op {
        Op::Unary(_) => data_inputs == 1,
        Op::Binary(_) => arity == 2,
    };
    if !ok_arity || (0..data_inputs).any(|i| dtype_of(g, node, i) != Some(DType::F32)) {
        return Ok(None);
    }
    let len = match (bound_shape(g, node, 0, dims), bound_shape(g, node, 1, dims)) {
        (Some(a), Some(b)) if matches!(op, Op::Binary(_)) => broadcast_shape(&a, &b).ok().map(|s| s.iter().product::<usize>()),
        (Some(a), _) if matches!(op, Op::Unary(_)) => Some(a.iter().product()),
        _ => None,
    };
    let variant = match len {
        Some(len) if len > 0 => tune_len(tuner, KERNEL, len)?,
        _ => "default".to_string(),
    };
    Ok(Some(Lowered { kernel: KERNEL, variant }))
}

/// A loaded elementwise step.
pub struct ElementwiseStep {
    op: Op,
}

impl ElementwiseStep {
    pub fn load(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Result<ElementwiseStep, String> {
        let float = |k: &str| step_float(step, k);
        let string = |k: &str| step_str(step, k).map(String::from);
        let clip = clip_bounds(step.opset, &float, &|i| match step.inputs.get(i).copied().flatten() {
            None => Some(None),
            Some(v) => weight(v).and_then(|t| t.as_slice::<f32>().ok().and_then(|s| s.first().copied())).map(Some),
        });
        let op = op_of(&step.op, &float, &string, clip).ok_or_else(|| format!("{} is not an elementwise op this kernel runs", step.op))?;
        Ok(ElementwiseStep { op })
    }

    /// `owned`: input 0 itself when the executor hands it over. A unary op runs in it; a binary
    /// op runs in it when it already has the output's shape (a residual Add: two passes over
    /// memory instead of a copy and then two), and otherwise only reads it.
    /// A new output (not run in place) is a copy of an input into a buffer from `pool`.
    pub fn run(
        &mut self,
        inputs: &[Option<&Tensor>],
        variant: &str,
        owned: Option<Tensor>,
        pool: &mut crate::exec::Pool,
    ) -> Result<Tensor, String> {
        let owned = match (self.op, owned) {
            (Op::Unary(u), Some(t)) => {
                let shape = t.shape().to_vec();
                let mut data = t.into_vec::<f32>().map_err(|e| e.to_string())?;
                let n = data.len();
                run_chain_inplace(&mut data, n.max(1), &[ChainStep::unary(u)], &params(n, variant)?).map_err(|e| e.to_string())?;
                return Tensor::from_vec(shape, data).map_err(|e| e.to_string());
            }
            (Op::Binary(b), Some(t)) => {
                let y = inputs.get(1).copied().flatten().ok_or("input 1 is missing")?;
                let out = broadcast_shape(t.shape(), y.shape())?;
                if out != t.shape() {
                    Some(t)
                } else {
                    let ys = y.as_slice::<f32>().map_err(|e| e.to_string())?;
                    let mut acc = t.into_vec::<f32>().map_err(|e| e.to_string())?;
                    binary_into(b, &mut acc, (ys, y.shape()), &out, variant, false)?;
                    return Tensor::from_vec(out, acc).map_err(|e| e.to_string());
                }
            }
            (_, owned) => owned,
        };
        let x = match (&owned, inputs.first().copied().flatten()) {
            (Some(t), _) => t,
            (None, Some(x)) => x,
            (None, None) => return Err("input 0 is missing".into()),
        };
        let xs = x.as_slice::<f32>().map_err(|e| e.to_string())?;
        match self.op {
            Op::Unary(u) => {
                let mut data = pool.take(xs.len());
                data.copy_from_slice(xs);
                let n = data.len();
                let params = params(n, variant)?;
                run_chain_inplace(&mut data, n.max(1), &[ChainStep::unary(u)], &params).map_err(|e| e.to_string())?;
                Tensor::from_vec(x.shape().to_vec(), data).map_err(|e| e.to_string())
            }
            Op::Binary(b) => {
                let y = inputs.get(1).copied().flatten().ok_or("input 1 is missing")?;
                let ys = y.as_slice::<f32>().map_err(|e| e.to_string())?;
                let out = broadcast_shape(x.shape(), y.shape())?;
                let data = binary(b, (xs, x.shape()), (ys, y.shape()), &out, variant, pool)?;
                Tensor::from_vec(out, data).map_err(|e| e.to_string())
            }
        }
    }
}

/// Tunes the chain kernel's tiling and threads for `len` elements (timed on one Add).
pub(super) fn tune_len(tuner: &mut Tuner, kernel: &str, len: usize) -> Result<String, TargetError> {
    let cands = chain_candidates(len, crate::device::cores());
    let names: Vec<String> = cands.iter().map(|c| format!("{c:?}")).collect();
    let mut data = filler(len);
    let rhs = filler(len);
    tune(tuner, kernel, format!("len={len}"), &names, |i| {
        let step = ChainStep::binary(Binary::Add, Operand::Full(&rhs));
        run_chain_inplace(&mut data, len, &[step], &cands[i]).map_err(|e| e.to_string())
    })
}

pub(super) fn params(len: usize, variant: &str) -> Result<ChainParams, String> {
    pick(&chain_candidates(len, crate::device::cores()), variant).ok_or_else(|| "no elementwise candidate".to_string())
}

/// `a op b` broadcast to `out`: the operand of the output's shape is copied once and the
/// other applied to it in place (swapping sides when it is `b` that has the output's shape).
fn binary(
    op: Binary,
    a: (&[f32], &[usize]),
    b: (&[f32], &[usize]),
    out: &[usize],
    variant: &str,
    pool: &mut crate::exec::Pool,
) -> Result<Vec<f32>, String> {
    let len: usize = out.iter().product();
    if len == 0 {
        return Ok(Vec::new());
    }
    let (acc_src, other, swap) = if pattern(a.1, out) == Pattern::Full {
        (a, b, false)
    } else if pattern(b.1, out) == Pattern::Full {
        (b, a, true)
    } else {
        (a, b, false)
    };
    let mut acc = if pattern(acc_src.1, out) == Pattern::Full {
        let mut v = pool.take(len);
        v.copy_from_slice(&acc_src.0[..len]);
        v
    } else {
        expand(acc_src.0, acc_src.1, out)
    };
    binary_into(op, &mut acc, other, out, variant, swap)?;
    Ok(acc)
}

/// `acc = acc op other` (or `other op acc` with `swap`), `acc` holding the whole output `out`
/// and `other` broadcasting to it.
fn binary_into(op: Binary, acc: &mut [f32], other: (&[f32], &[usize]), out: &[usize], variant: &str, swap: bool) -> Result<(), String> {
    let len = acc.len();
    if len == 0 {
        return Ok(());
    }
    let params = params(len, variant)?;
    let run = |data: &mut [f32], row_len: usize, rhs: Operand<'_>| {
        run_chain_inplace(data, row_len, &[ChainStep::Binary { op, rhs, swap }], &params).map_err(|e| e.to_string())
    };
    match pattern(other.1, out) {
        Pattern::Scalar => run(acc, len, Operand::Scalar(other.0[0]))?,
        Pattern::Full => run(acc, len, Operand::Full(other.0))?,
        // A row repeats over every block by itself; a column is per block.
        Pattern::Blocks { mid, inner: 1, .. } => run(acc, mid, Operand::Row(other.0))?,
        Pattern::Blocks { outer: 1, inner, .. } => run(acc, inner, Operand::Col(other.0))?,
        Pattern::Blocks { mid, inner, .. } => {
            for block in acc.chunks_mut(mid * inner) {
                run(block, inner, Operand::Col(other.0))?;
            }
        }
        Pattern::General => {
            let full = expand(other.0, other.1, out);
            run(acc, len, Operand::Full(&full))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(op: Binary, a: (&[f32], &[usize]), b: (&[f32], &[usize]), out: &[usize]) -> Vec<f32> {
        let (ea, eb) = (expand(a.0, a.1, out), expand(b.0, b.1, out));
        ea.iter()
            .zip(&eb)
            .map(|(&x, &y)| match op {
                Binary::Add => x + y,
                Binary::Sub => x - y,
                Binary::Mul => x * y,
                Binary::Div => x / y,
                Binary::Max => x.max(y),
                Binary::Min => x.min(y),
            })
            .collect()
    }

    #[test]
    fn every_broadcast_pattern_matches_the_naive_rule() {
        let shapes: &[(&[usize], &[usize])] = &[
            (&[2, 3, 4], &[2, 3, 4]),
            (&[2, 3, 4], &[]),
            (&[1], &[2, 3, 4]),
            (&[2, 3, 4], &[4]),
            (&[4], &[2, 3, 4]),
            (&[2, 3, 4], &[3, 1]),
            (&[3, 1], &[2, 3, 4]),
            (&[2, 3, 4], &[1, 3, 1]),
            (&[2, 1, 4], &[1, 3, 1]),
            (&[5, 3, 1], &[1, 3, 7]),
        ];
        for (i, &(sa, sb)) in shapes.iter().enumerate() {
            let a = filler(sa.iter().product());
            let b: Vec<f32> = filler(sb.iter().product::<usize>() + 3)[3..].iter().map(|v| v + 2.0).collect();
            let out = broadcast_shape(sa, sb).expect("broadcast");
            for op in [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div, Binary::Max, Binary::Min] {
                let got = binary(op, (&a, sa), (&b, sb), &out, "default", &mut crate::exec::Pool::default()).expect("runs");
                let want = naive(op, (&a, sa), (&b, sb), &out);
                assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "case {i} {op:?}: {g} vs {w}");
                }
            }
        }
    }
}

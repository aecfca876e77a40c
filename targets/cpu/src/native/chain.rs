//! `kiln::Chain` (f32): the whole run of elementwise ops in one pass over memory on the chain
//! kernel. Each operand lines up with the running value as a scalar, a full tensor, a row or
//! a column; one row length serves them all, and an operand that fits none is copied out to
//! the full shape first.

use super::broadcast::{Pattern, expand, pattern};
use super::elementwise::{Op, chain_op, params, tune_len};
use super::{Dims, Lowered, bound_shape, dtype_of, step_ints};
use crate::kernels::{Operand, Step as ChainStep, run_chain_inplace};
use kiln_ir::{Attr, Graph, Node};
use kiln_target::{AttrValue, Step, TargetError, Tuner};
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.chain";

/// (op, operand input index, swap).
type Link = (Op, Option<usize>, bool);

/// An operand's values, shape and how it lines up with the running value.
type Lined<'a> = (&'a [f32], &'a [usize], Pattern);

fn links(ops: &[String], operands: &[i64], swap: &[i64], alpha: &[f32], beta: &[f32]) -> Option<Vec<Link>> {
    let n = ops.len();
    if operands.len() != n || swap.len() != n || alpha.len() != n || beta.len() != n {
        return None;
    }
    (0..n)
        .map(|i| {
            let op = chain_op(&ops[i], alpha[i], beta[i])?;
            let operand = match (op, operands[i]) {
                (Op::Binary(_), k) if k >= 1 => Some(k as usize),
                (Op::Unary(_), -1) => None,
                _ => return None,
            };
            Some((op, operand, swap[i] != 0))
        })
        .collect()
}

pub fn lower(g: &Graph, node: &Node, dims: &Dims, tuner: &mut Tuner) -> Result<Option<Lowered>, TargetError> {
    let ops: Vec<String> = match node.attrs.get("ops") {
        Some(Attr::Strings(v)) => v.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect(),
        _ => return Ok(None),
    };
    let ints = |k: &str| node.attr_ints(k).map(<[i64]>::to_vec).unwrap_or_default();
    let floats = |k: &str| node.attr_floats(k).map(<[f32]>::to_vec).unwrap_or_default();
    let ok = links(&ops, &ints("operands"), &ints("swap"), &floats("alpha"), &floats("beta")).is_some();
    if !ok || (0..node.inputs.len()).any(|i| dtype_of(g, node, i) != Some(DType::F32)) {
        return Ok(None);
    }
    let variant = match bound_shape(g, node, 0, dims).map(|s| s.iter().product::<usize>()) {
        Some(len) if len > 0 => tune_len(tuner, KERNEL, len)?,
        _ => "default".into(),
    };
    Ok(Some(Lowered { kernel: KERNEL, variant }))
}

pub struct ChainStepNative {
    links: Vec<Link>,
}

impl ChainStepNative {
    pub fn load(step: &Step) -> Result<ChainStepNative, String> {
        let ops: Vec<String> = match step.attrs.get("ops") {
            Some(AttrValue::Strings(v)) => v.clone(),
            _ => return Err("attribute 'ops' is missing".into()),
        };
        let floats = |k: &str| match step.attrs.get(k) {
            Some(AttrValue::Floats(v)) => v.clone(),
            _ => Vec::new(),
        };
        let (operands, swap) = (step_ints(step, "operands").unwrap_or_default(), step_ints(step, "swap").unwrap_or_default());
        let links = links(&ops, &operands, &swap, &floats("alpha"), &floats("beta")).ok_or("inconsistent chain attributes")?;
        Ok(ChainStepNative { links })
    }

    /// `owned`: X itself when the executor hands it over (its last reader): the chain then
    /// runs in X's buffer, with no copy.
    /// A new output (not run in place) is a copy of X into a buffer from `pool`.
    pub fn run(
        &mut self,
        inputs: &[Option<&Tensor>],
        variant: &str,
        owned: Option<Tensor>,
        pool: &mut crate::exec::Pool,
    ) -> Result<Tensor, String> {
        let (shape, mut acc) = match owned {
            Some(t) => (t.shape().to_vec(), t.into_vec::<f32>().map_err(|e| e.to_string())?),
            None => {
                let x = inputs.first().copied().flatten().ok_or("input X is missing")?;
                let xs = x.as_slice::<f32>().map_err(|e| e.to_string())?;
                let mut acc = pool.take(xs.len());
                acc.copy_from_slice(xs);
                (x.shape().to_vec(), acc)
            }
        };
        let shape = &shape[..];
        let len = acc.len();
        if len == 0 {
            return Tensor::from_vec(shape.to_vec(), acc).map_err(|e| e.to_string());
        }
        // Each operand's slice and pattern; the first row or column fixes the row length.
        let mut operands: Vec<Option<Lined>> = Vec::with_capacity(self.links.len());
        let mut row_len = None;
        for &(_, k, _) in &self.links {
            operands.push(match k {
                None => None,
                Some(k) => {
                    let t = inputs.get(k).copied().flatten().ok_or_else(|| format!("operand {k} is missing"))?;
                    let p = pattern(t.shape(), shape);
                    if super::broadcast::broadcast_shape(t.shape(), shape)? != shape {
                        return Err(format!("operand of shape {:?} widens the chain's {shape:?}", t.shape()));
                    }
                    let want = match p {
                        Pattern::Blocks { mid, inner: 1, .. } => Some(mid),
                        Pattern::Blocks { outer: 1, inner, .. } => Some(inner),
                        _ => None,
                    };
                    if row_len.is_none() {
                        row_len = want;
                    }
                    Some((t.as_slice::<f32>().map_err(|e| e.to_string())?, t.shape(), p))
                }
            });
        }
        let row_len = row_len.unwrap_or(len);
        // Operands that do not fit that row length are expanded.
        let expanded: Vec<Option<Vec<f32>>> = operands
            .iter()
            .map(|o| match o {
                Some((d, s, p)) if !fits(*p, row_len) => Some(expand(d, s, shape)),
                _ => None,
            })
            .collect();
        let mut steps = Vec::with_capacity(self.links.len());
        for (i, &(op, _, swap)) in self.links.iter().enumerate() {
            steps.push(match (op, &operands[i], &expanded[i]) {
                (Op::Unary(u), _, _) => ChainStep::unary(u),
                (Op::Binary(b), _, Some(full)) => ChainStep::Binary { op: b, rhs: Operand::Full(full), swap },
                (Op::Binary(b), Some((d, _, p)), None) => {
                    let rhs = match p {
                        Pattern::Scalar => Operand::Scalar(d[0]),
                        Pattern::Full => Operand::Full(d),
                        Pattern::Blocks { inner: 1, .. } => Operand::Row(d),
                        _ => Operand::Col(d),
                    };
                    ChainStep::Binary { op: b, rhs, swap }
                }
                (Op::Binary(_), None, None) => return Err(format!("op {i} has no operand")),
            });
        }
        run_chain_inplace(&mut acc, row_len, &steps, &params(len, variant)?).map_err(|e| e.to_string())?;
        Tensor::from_vec(shape.to_vec(), acc).map_err(|e| e.to_string())
    }
}

/// Whether an operand of pattern `p` can be applied with rows of `row_len`.
fn fits(p: Pattern, row_len: usize) -> bool {
    match p {
        Pattern::Scalar | Pattern::Full => true,
        Pattern::Blocks { mid, inner: 1, .. } => mid == row_len,
        Pattern::Blocks { outer: 1, inner, .. } => inner == row_len,
        _ => false,
    }
}

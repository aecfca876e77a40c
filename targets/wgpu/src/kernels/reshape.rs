//! `wgpu.reshape`: `Reshape`, `Squeeze`, `Unsqueeze`, `Flatten` and `Identity` of an f32
//! device value (steps the CPU target leaves to the reference kernel), with the target shape
//! or axes an attribute, a constant, or an int value computed on the host (read there at run
//! time, never uploaded: `kernels::host_inputs`). Nothing is dispatched: the output is the input's buffer
//! under the new shape (the pool hands a buffer back only when its last holder dies), so a
//! reshape between two wgpu steps no longer costs a readback and an upload. One variant.

use super::act::{step_int, step_ints};
use super::{Encoded, GpuKernel, KernelCtx};
use crate::runtime::GpuTensor;
use kiln_target::Step;
use kiln_tensor::Tensor;

pub const KERNEL: &str = "wgpu.reshape";
pub const VARIANTS: &[&str] = &["alias"];

/// A shape or axes list: known at load, or input 1's value on the host at run time.
#[derive(Clone)]
enum Ints {
    Known(Vec<i64>),
    AtRun,
}

#[derive(Clone)]
enum Kind {
    Reshape {
        shape: Ints,
        allow_zero: bool,
    },
    /// No axes: every axis of size 1.
    Squeeze(Option<Ints>),
    Unsqueeze(Ints),
    Flatten(i64),
    Identity,
}

/// The attribute `attr` (older opsets), or input 1: a constant, or an int value computed at
/// run time (`f32` says whether a value is f32); `Some(None)` when neither is there.
fn ints(step: &Step, attr: &str, weight: &dyn Fn(usize) -> Option<Tensor>, f32: &dyn Fn(usize) -> bool) -> Option<Option<Ints>> {
    match (step_ints(step, attr), step.inputs.get(1).copied().flatten()) {
        (Some(a), _) => Some(Some(Ints::Known(a))),
        (None, None) => Some(None),
        (None, Some(v)) => match weight(v) {
            Some(t) => Some(Some(Ints::Known(t.to_i64_vec().ok()?))),
            None => (!f32(v)).then_some(Some(Ints::AtRun)),
        },
    }
}

fn kind(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>, f32: &dyn Fn(usize) -> bool) -> Option<Kind> {
    if !step.domain.is_empty() {
        return None;
    }
    Some(match step.op.as_str() {
        "Reshape" if step.opset >= 5 => {
            Kind::Reshape { shape: ints(step, "shape", weight, f32)??, allow_zero: step_int(step, "allowzero").unwrap_or(0) != 0 }
        }
        "Squeeze" => Kind::Squeeze(ints(step, "axes", weight, f32)?),
        "Unsqueeze" => Kind::Unsqueeze(ints(step, "axes", weight, f32)??),
        "Flatten" => Kind::Flatten(step_int(step, "axis").unwrap_or(1)),
        "Identity" => Kind::Identity,
        _ => return None,
    })
}

pub fn covers(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>, f32: &dyn Fn(usize) -> bool) -> bool {
    step.inputs.first().copied().flatten().is_some_and(f32) && step.outputs.len() == 1 && kind(step, weight, f32).is_some()
}

/// An axis in `0..rank` (negative from the end).
fn axis(a: i64, rank: usize) -> Result<usize, String> {
    let v = if a < 0 { a + rank as i64 } else { a };
    usize::try_from(v).ok().filter(|&v| v < rank).ok_or_else(|| format!("axis {a} is out of range for rank {rank}"))
}

fn out_shape(k: &Kind, x: &[usize], host: Option<&Tensor>) -> Result<Vec<usize>, String> {
    let resolve = |i: &Ints| -> Result<Vec<i64>, String> {
        match i {
            Ints::Known(v) => Ok(v.clone()),
            Ints::AtRun => host.ok_or("the target shape or axes are not on the host")?.to_i64_vec().map_err(|e| e.to_string()),
        }
    };
    let r = x.len();
    let n: usize = x.iter().product();
    let out = match k {
        Kind::Identity => x.to_vec(),
        Kind::Flatten(a) => {
            let a = if *a < 0 { a + r as i64 } else { *a };
            let a = usize::try_from(a).ok().filter(|&a| a <= r).ok_or_else(|| format!("axis {a} is out of range for rank {r}"))?;
            vec![x[..a].iter().product(), x[a..].iter().product()]
        }
        Kind::Squeeze(None) => x.iter().copied().filter(|&d| d != 1).collect(),
        Kind::Squeeze(Some(axes)) => {
            let axes = resolve(axes)?;
            let drop: Vec<usize> = axes.iter().map(|&a| axis(a, r)).collect::<Result<_, _>>()?;
            if let Some(&bad) = drop.iter().find(|&&a| x[a] != 1) {
                return Err(format!("cannot squeeze axis {bad} of {x:?}: its size is not 1"));
            }
            x.iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, &d)| d).collect()
        }
        Kind::Unsqueeze(axes) => {
            let axes = resolve(axes)?;
            let rank = r + axes.len();
            let mut ins: Vec<usize> = axes.iter().map(|&a| axis(a, rank)).collect::<Result<_, _>>()?;
            ins.sort_unstable();
            if ins.windows(2).any(|w| w[0] == w[1]) {
                return Err(format!("axes {axes:?} repeat"));
            }
            let mut rest = x.iter();
            (0..rank)
                .map(|i| if ins.contains(&i) { Some(1) } else { rest.next().copied() })
                .collect::<Option<_>>()
                .ok_or("axes do not fit")?
        }
        Kind::Reshape { shape, allow_zero } => {
            let shape = resolve(shape)?;
            let mut out = Vec::with_capacity(shape.len());
            let mut infer = None;
            for (i, &s) in shape.iter().enumerate() {
                out.push(match s {
                    -1 if infer.is_none() => {
                        infer = Some(i);
                        1
                    }
                    0 if !*allow_zero => *x.get(i).ok_or_else(|| format!("shape {shape:?} copies axis {i} that {x:?} lacks"))?,
                    s => usize::try_from(s).map_err(|_| format!("shape {shape:?} is not a valid target"))?,
                });
            }
            if let Some(i) = infer {
                let known: usize = out.iter().product();
                if known == 0 || !n.is_multiple_of(known) {
                    return Err(format!("cannot reshape {x:?} to {shape:?}"));
                }
                out[i] = n / known;
            }
            out
        }
    };
    if out.iter().product::<usize>() != n {
        return Err(format!("cannot reshape {x:?} ({n} elements) to {out:?}"));
    }
    Ok(out)
}

pub struct Reshape {
    kind: Kind,
}

pub fn load(step: &Step, cx: &KernelCtx) -> Result<Box<dyn GpuKernel>, String> {
    // A target that is not a constant arrives on the host at run time (whatever its type).
    Ok(Box::new(Reshape { kind: kind(step, cx.weight, &|_| false).ok_or("unsupported target shape or axes")? }))
}

impl GpuKernel for Reshape {
    fn encode(&self, cx: &mut Encoded, inputs: &[Option<&GpuTensor>]) -> Result<GpuTensor, String> {
        let x = inputs.first().copied().flatten().ok_or("data is missing")?;
        let host = cx.host.get(1).copied().flatten();
        Ok(GpuTensor { buf: x.buf.clone(), shape: out_shape(&self.kind, &x.shape, host)?, float: x.float })
    }
}

//! Running a CPU plan.

use crate::native::Native;
use crate::shape_memo::ShapeMemo;
use kiln_ir::{Attr, Node, ValueId};
use kiln_target::{AttrValue, DimSpec, Executable, Plan, StepTime, TargetError, memory_plan};
use kiln_tensor::{DType, Tensor};
use std::collections::BTreeMap;

/// f32 buffers of values past their last reader, kept for later outputs: a GEMM or attention
/// step writes every element of its output, so it takes one of these instead of allocating
/// and zeroing a new one (allocation showed as ~2% of a MiniLM run, most of it zeroing).
#[derive(Default)]
pub struct Pool {
    bufs: Vec<Vec<f32>>,
}

/// Buffers a pool keeps at most (the rest are freed).
const POOL_BUFFERS: usize = 16;

impl Pool {
    /// A buffer of `n` elements whose contents are unspecified (stale values or zeros): for
    /// kernels that overwrite all of it. The smallest kept buffer that holds `n` is reused.
    ///
    /// In debug builds (the test suite) every taken buffer is filled with NaN, so a kernel
    /// that leaves an element unwritten fails its conformance comparison.
    pub fn take(&mut self, n: usize) -> Vec<f32> {
        let best = self.bufs.iter().enumerate().filter(|(_, b)| b.capacity() >= n).min_by_key(|(_, b)| b.capacity()).map(|(i, _)| i);
        let mut b = match best {
            None => vec![0f32; n],
            Some(i) => {
                let mut b = self.bufs.swap_remove(i);
                b.truncate(n);
                b.resize(n, 0.0);
                b
            }
        };
        if cfg!(debug_assertions) {
            b.fill(f32::NAN);
        }
        b
    }

    /// Keeps a dead value's storage when it is f32 (the smallest kept one makes room).
    pub fn give(&mut self, t: Tensor) {
        let Ok(b) = t.into_vec::<f32>() else { return };
        if b.capacity() == 0 {
            return;
        }
        if self.bufs.len() >= POOL_BUFFERS {
            let Some((i, _)) = self.bufs.iter().enumerate().min_by_key(|(_, b)| b.capacity()) else { return };
            if self.bufs[i].capacity() >= b.capacity() {
                return;
            }
            self.bufs.swap_remove(i);
        }
        self.bufs.push(b);
    }
}

/// A loaded plan: decoded weights, per-step nodes for fallback kernels, and last-use tables.
pub struct CpuExecutable {
    plan: Plan,
    weights: Vec<Tensor>,
    nodes: Vec<Node>,
    /// Steps bound to native kernels (None: the reference kernel runs them).
    natives: Vec<Option<Native>>,
    /// Values to free after each step.
    free_after: Vec<Vec<usize>>,
    peak: Option<u64>,
    /// Per-step (calls, seconds) while profiling is on.
    profile: Option<Vec<(u64, f64)>>,
    pool: Pool,
    /// Shape arithmetic kept from the last run.
    memo: ShapeMemo,
}

fn plan_err(reason: String) -> TargetError {
    TargetError::Plan { path: "<loaded plan>".into(), reason }
}

impl CpuExecutable {
    pub fn load(plan: &Plan, blob: Vec<u8>) -> Result<CpuExecutable, TargetError> {
        let mut weights = Vec::with_capacity(plan.weights.len());
        for w in &plan.weights {
            let dtype =
                DType::from_name(&w.dtype).ok_or_else(|| plan_err(format!("weight '{}' has unknown dtype '{}'", w.name, w.dtype)))?;
            if w.layout != "row-major" {
                return Err(plan_err(format!("weight '{}' has layout '{}', which this Kiln does not know", w.name, w.layout)));
            }
            let start = w.offset as usize;
            let raw =
                blob.get(start..start + w.bytes as usize).ok_or_else(|| plan_err(format!("weight '{}' runs past the blob", w.name)))?;
            weights.push(Tensor::from_raw_bytes(dtype, w.shape.clone(), raw).map_err(|e| plan_err(format!("weight '{}': {e}", w.name)))?);
        }
        let mut nodes = Vec::with_capacity(plan.steps.len());
        for s in &plan.steps {
            let mut attrs = BTreeMap::new();
            for (k, a) in &s.attrs {
                let v = match a {
                    AttrValue::Int(i) => Attr::Int(*i),
                    AttrValue::Float(f) => Attr::Float(*f),
                    AttrValue::Ints(v) => Attr::Ints(v.clone()),
                    AttrValue::Floats(v) => Attr::Floats(v.clone()),
                    AttrValue::String(s) => Attr::String(s.clone().into_bytes()),
                    AttrValue::Strings(v) => Attr::Strings(v.iter().map(|s| s.clone().into_bytes()).collect()),
                    AttrValue::Tensor(i) => Attr::Tensor(
                        weights
                            .get(*i)
                            .cloned()
                            .ok_or_else(|| plan_err(format!("attribute '{k}' names weight {i}, which does not exist")))?,
                    ),
                };
                attrs.insert(k.clone(), v);
            }
            // Kernels read how many inputs/outputs a node has (Split's output count), not ids.
            nodes.push(Node {
                name: s.node.clone(),
                op_type: s.op.clone(),
                domain: s.domain.clone(),
                opset: s.opset,
                inputs: s.inputs.iter().map(|i| i.map(ValueId)).collect(),
                outputs: s.outputs.iter().map(|o| o.map(ValueId)).collect(),
                attrs,
                unsupported: None,
            });
        }
        let n = plan.values.len();
        let mut last = vec![None; n];
        for (i, s) in plan.steps.iter().enumerate() {
            for &v in s.inputs.iter().flatten() {
                last[v] = Some(i);
            }
        }
        let mut free_after = vec![Vec::new(); plan.steps.len()];
        for (v, l) in last.iter().enumerate() {
            if let Some(step) = l
                && !plan.outputs.contains(&v)
                && plan.values[v].weight.is_none()
            {
                free_after[*step].push(v);
            }
        }
        let weight = |v: usize| plan.values.get(v).and_then(|pv| pv.weight).and_then(|w| weights.get(w).cloned());
        let mut natives = Vec::with_capacity(plan.steps.len());
        for (i, s) in plan.steps.iter().enumerate() {
            natives.push(Native::load(s, &weight).map_err(|reason| plan_err(format!("step {i} ({}): {reason}", s.kernel)))?);
        }
        let memo = ShapeMemo::new(plan);
        Ok(CpuExecutable { plan: plan.clone(), weights, nodes, natives, free_after, peak: None, profile: None, pool: Pool::default(), memo })
    }

    /// Steps of shape arithmetic skipped since load because they read what they read the run
    /// before (see `shape_memo`).
    pub fn shape_memo_hits(&self) -> u64 {
        self.memo.hits
    }

    fn bind_inputs(&self, inputs: Vec<(String, Tensor)>) -> Result<Vec<Option<Tensor>>, TargetError> {
        let mut slots: Vec<Option<Tensor>> = vec![None; self.plan.values.len()];
        let mut dims: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for (name, t) in inputs {
            let &v = self.plan.inputs.iter().find(|&&v| self.plan.values[v].name == name).ok_or_else(|| TargetError::Input {
                name: name.clone(),
                reason: format!(
                    "not an input of this plan (inputs: {})",
                    self.plan.inputs.iter().map(|&v| self.plan.values[v].name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            })?;
            let pv = &self.plan.values[v];
            let bad = |reason: String| TargetError::Input { name: name.clone(), reason };
            if pv.dtype != "?" && pv.dtype != t.dtype().name() {
                return Err(bad(format!("expects {} elements, got {}", pv.dtype, t.dtype())));
            }
            if let Some(shape) = &pv.shape {
                if shape.len() != t.rank() {
                    return Err(bad(format!("expects rank {}, got shape {:?}", shape.len(), t.shape())));
                }
                for (i, (d, &n)) in shape.iter().zip(t.shape()).enumerate() {
                    match d {
                        DimSpec::Known(k) if *k != n => return Err(bad(format!("dimension {i} must be {k}, got {n}"))),
                        DimSpec::Sym(s) => match dims.get(s) {
                            Some((prev, from)) if *prev != n => {
                                return Err(bad(format!("dimension '{s}' is {prev} from input '{from}' but {n} here")));
                            }
                            _ => {
                                dims.insert(s.clone(), (n, name.clone()));
                            }
                        },
                        _ => {}
                    }
                }
            }
            slots[v] = Some(t);
        }
        if let Some(&missing) = self.plan.inputs.iter().find(|&&v| slots[v].is_none()) {
            return Err(TargetError::Input {
                name: self.plan.values[missing].name.clone(),
                reason: "is required but was not given".into(),
            });
        }
        Ok(slots)
    }
}

impl Executable for CpuExecutable {
    fn run(&mut self, inputs: Vec<(String, Tensor)>) -> Result<Vec<(String, Tensor)>, TargetError> {
        crate::par::wake();
        let mut slots = self.bind_inputs(inputs)?;
        let mut bytes = vec![0u64; self.plan.values.len()];
        for (i, step) in self.plan.steps.iter().enumerate() {
            let started = self.profile.as_ref().map(|_| std::time::Instant::now());
            // A step that can run in place takes over input 0 when this is its last reader.
            let owned = match (&self.natives[i], step.inputs.first()) {
                (Some(n), Some(Some(v)))
                    if n.in_place()
                        && self.plan.values[*v].weight.is_none()
                        && self.free_after[i].contains(v)
                        && step.inputs.iter().filter(|x| **x == Some(*v)).count() == 1 =>
                {
                    slots[*v].take()
                }
                _ => None,
            };
            let outs = {
                let mut ins: Vec<Option<&Tensor>> = Vec::with_capacity(step.inputs.len());
                for (k, &v) in step.inputs.iter().enumerate() {
                    if k == 0 && owned.is_some() {
                        ins.push(None);
                        continue;
                    }
                    ins.push(match v {
                        None => None,
                        Some(v) => Some(match self.plan.values[v].weight {
                            Some(w) => &self.weights[w],
                            None => slots[v].as_ref().ok_or_else(|| TargetError::Run {
                                step: i,
                                kernel: step.kernel.clone(),
                                reason: format!("value '{}' is read before it is written", self.plan.values[v].name),
                            })?,
                        }),
                    });
                }
                let run_err = |reason: String| TargetError::Run { step: i, kernel: step.kernel.clone(), reason };
                // Shape arithmetic that reads what it read last run: its last outputs.
                let keep = if owned.is_some() { Err(None) } else { self.memo.lookup(i, &step.op, &ins) };
                match keep {
                    Ok(outs) => outs,
                    Err(keep) => {
                        let outs = match (&mut self.natives[i], step.kernel.as_str()) {
                            (Some(native), _) => vec![native.run(&ins, &step.variant, owned, &mut self.pool).map_err(run_err)?],
                            (None, "reference") => kiln_reference::run_node(&self.nodes[i], &ins).map_err(|e| run_err(e.to_string()))?,
                            (None, other) => return Err(run_err(format!("this Kiln has no CPU kernel '{other}'"))),
                        };
                        if let Some(k) = keep {
                            self.memo.keep(i, k, &outs);
                        }
                        outs
                    }
                }
            };
            for (slot, t) in step.outputs.iter().zip(outs) {
                if let Some(v) = slot {
                    bytes[*v] = t.dtype().storage_bytes(t.len()) as u64;
                    slots[*v] = Some(t);
                }
            }
            for &v in &self.free_after[i] {
                if let Some(t) = slots[v].take() {
                    self.pool.give(t);
                }
            }
            if let (Some(t), Some(p)) = (started, self.profile.as_mut()) {
                p[i].0 += 1;
                p[i].1 += t.elapsed().as_secs_f64();
            }
        }
        self.peak = Some(memory_plan(&self.plan, &bytes).peak_bytes);
        self.plan
            .outputs
            .iter()
            .map(|&v| {
                let name = self.plan.values[v].name.clone();
                let t = match self.plan.values[v].weight {
                    Some(w) => self.weights[w].clone(),
                    None => slots[v].take().ok_or_else(|| TargetError::Run {
                        step: self.plan.steps.len(),
                        kernel: "output".into(),
                        reason: format!("output '{name}' was not produced"),
                    })?,
                };
                Ok((name, t))
            })
            .collect()
    }

    fn planned_peak_bytes(&self) -> Option<u64> {
        self.peak
    }

    fn set_profiling(&mut self, on: bool) -> bool {
        self.profile = on.then(|| vec![(0, 0.0); self.plan.steps.len()]);
        true
    }

    fn step_times(&self) -> Vec<StepTime> {
        self.profile.as_deref().map_or_else(Vec::new, |p| kiln_target::step_times(&self.plan, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_reuses_the_smallest_buffer_that_fits_and_keeps_f32_only() {
        let mut pool = Pool::default();
        pool.give(Tensor::from_vec(vec![8], vec![1f32; 8]).expect("tensor"));
        pool.give(Tensor::from_vec(vec![4], vec![2f32; 4]).expect("tensor"));
        pool.give(Tensor::from_vec(vec![4], vec![3i64; 4]).expect("tensor"));
        let b = pool.take(3);
        assert_eq!((b.len(), b.capacity()), (3, 4));
        assert_eq!(pool.take(6).len(), 6);
        assert_eq!(pool.bufs.len(), 0);
        let fresh = pool.take(5);
        assert_eq!(fresh.len(), 5);
        // Debug builds hand out NaN-filled buffers, so an unwritten element shows in a test.
        assert!(fresh.iter().all(|v| v.is_nan() == cfg!(debug_assertions)));
        for i in 0..POOL_BUFFERS + 4 {
            pool.give(Tensor::from_vec(vec![i + 1], vec![0f32; i + 1]).expect("tensor"));
        }
        assert_eq!(pool.bufs.len(), POOL_BUFFERS);
        assert!(pool.bufs.iter().all(|b| b.capacity() > 4));
    }
}

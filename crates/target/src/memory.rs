//! Static memory planning: intermediate buffers share one arena, reused once dead.

use crate::Plan;

/// Where each intermediate value lives in the arena, and the arena's size.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryPlan {
    /// Byte offset per plan value (None: inputs, outputs, weights and values never written).
    pub offsets: Vec<Option<u64>>,
    pub peak_bytes: u64,
}

/// Plans the arena for concrete byte sizes (`bytes[v]` per plan value, after binding dims):
/// each intermediate lives from the step that writes it to the last step that reads it, and
/// takes the lowest offset not overlapping a live buffer (first fit, largest first per step).
pub fn memory_plan(plan: &Plan, bytes: &[u64]) -> MemoryPlan {
    let n = plan.values.len();
    let mut first = vec![usize::MAX; n];
    let mut last = vec![0usize; n];
    for (i, s) in plan.steps.iter().enumerate() {
        for &o in s.outputs.iter().flatten() {
            first[o] = first[o].min(i);
            last[o] = last[o].max(i);
        }
        for &v in s.inputs.iter().flatten() {
            last[v] = last[v].max(i);
        }
    }
    let pinned = |v: usize| plan.inputs.contains(&v) || plan.outputs.contains(&v) || plan.values[v].weight.is_some();
    let mut offsets = vec![None; n];
    let mut live: Vec<(u64, u64, usize)> = Vec::new(); // (offset, size, last step)
    let mut peak = 0u64;
    for step in 0..plan.steps.len() {
        let mut born: Vec<usize> = (0..n).filter(|&v| first[v] == step && !pinned(v)).collect();
        born.sort_by_key(|&v| std::cmp::Reverse(bytes.get(v).copied().unwrap_or(0)));
        for v in born {
            let size = bytes.get(v).copied().unwrap_or(0).div_ceil(64) * 64;
            live.sort_by_key(|&(o, _, _)| o);
            let mut at = 0u64;
            for &(o, s, _) in &live {
                if at + size <= o {
                    break;
                }
                at = at.max(o + s);
            }
            offsets[v] = Some(at);
            peak = peak.max(at + size);
            live.push((at, size, last[v]));
        }
        // Buffers whose last reader is this step are free for the next step.
        live.retain(|&(_, _, l)| l > step);
    }
    MemoryPlan { offsets, peak_bytes: peak }
}

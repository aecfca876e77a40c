//! Scan: runs `body` once per slice of the scan inputs, threading state values through.
//! Opset 8: every input has a leading batch axis and an optional `sequence_lens` first input;
//! the scan axis is axis 1 and `directions` reverses scan inputs. Opset 9+: no batch axis;
//! `scan_input_axes`/`scan_input_directions` and `scan_output_axes`/`scan_output_directions`.

use super::common::{concat, narrow, opt_tensor, req_tensor, req_value, select, stack, value_tensor};
use super::loop_op::empty_scan_output;
use crate::util::axis;
use crate::{OpCtx, OpError, Value, bail};
use kiln_ir::Graph;
use kiln_tensor::Tensor;

/// How the scan inputs are read and the scan outputs written.
struct Plan {
    in_axes: Vec<usize>,
    in_reverse: Vec<bool>,
    out_axes: Vec<i64>,
    out_reverse: Vec<bool>,
}

pub fn scan(ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    if ctx.opset() < 9 { scan8(ctx, inputs) } else { scan9(ctx, inputs) }
}

fn flags(ctx: &OpCtx, name: &str, n: usize) -> Result<Vec<bool>, OpError> {
    match ctx.attr_ints(name) {
        None => Ok(vec![false; n]),
        Some(v) if v.len() == n && v.iter().all(|&d| d == 0 || d == 1) => Ok(v.iter().map(|&d| d == 1).collect()),
        Some(v) => bail!("attribute '{name}' must hold {n} values of 0 or 1, got {v:?}"),
    }
}

fn counts(ctx: &OpCtx, n_inputs: usize) -> Result<(usize, usize, usize), OpError> {
    let body = ctx.graph("body")?;
    let m = ctx.req_i("num_scan_inputs")?;
    if m < 1 || m as usize > n_inputs {
        bail!("attribute 'num_scan_inputs' must be in 1..={n_inputs}, got {m}");
    }
    let m = m as usize;
    let n_states = n_inputs - m;
    if body.outputs.len() < n_states {
        bail!("the body has {} outputs, fewer than the {n_states} state values", body.outputs.len());
    }
    Ok((n_states, m, body.outputs.len() - n_states))
}

fn scan9(ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    let body = ctx.graph("body")?;
    let (n_states, m, k) = counts(ctx, inputs.len())?;
    let states: Vec<Value> = (0..n_states).map(|i| req_value(inputs, i).cloned()).collect::<Result<_, _>>()?;
    let scans: Vec<&Tensor> = (n_states..inputs.len()).map(|i| req_tensor(inputs, i)).collect::<Result<_, _>>()?;
    let in_axes = match ctx.attr_ints("scan_input_axes") {
        None => vec![0; m],
        Some(v) if v.len() == m => v.iter().zip(&scans).map(|(&a, t)| axis(a, t.rank())).collect::<Result<_, _>>()?,
        Some(v) => bail!("attribute 'scan_input_axes' must hold {m} values, got {v:?}"),
    };
    let out_axes = match ctx.attr_ints("scan_output_axes") {
        None => vec![0; k],
        Some(v) if v.len() == k => v.to_vec(),
        Some(v) => bail!("attribute 'scan_output_axes' must hold {k} values, got {v:?}"),
    };
    let plan = Plan {
        in_axes,
        in_reverse: flags(ctx, "scan_input_directions", m)?,
        out_axes,
        out_reverse: flags(ctx, "scan_output_directions", k)?,
    };
    let (states, outs) = run_scan(ctx, body, states, &scans, &plan, None)?;
    Ok(states.into_iter().chain(outs.into_iter().map(Value::Tensor)).collect())
}

fn scan8(ctx: &OpCtx, inputs: &[Option<&Value>]) -> Result<Vec<Value>, OpError> {
    let body = ctx.graph("body")?;
    let lens = opt_tensor(inputs, 0)?;
    let (n_states, m, k) = counts(ctx, inputs.len().saturating_sub(1))?;
    let states: Vec<&Tensor> = (1..1 + n_states).map(|i| req_tensor(inputs, i)).collect::<Result<_, _>>()?;
    let scans: Vec<&Tensor> = (1 + n_states..inputs.len()).map(|i| req_tensor(inputs, i)).collect::<Result<_, _>>()?;
    let first = scans.first().ok_or_else(|| OpError::Invalid("Scan needs a scan input".into()))?;
    if first.rank() < 2 {
        bail!("opset-8 Scan inputs need a batch and a sequence axis, got shape {:?}", first.shape());
    }
    let (batch, max_len) = (first.shape()[0], first.shape()[1]);
    for t in &states {
        if t.shape().first() != Some(&batch) {
            bail!("every Scan state needs batch size {batch}, got shape {:?}", t.shape());
        }
    }
    for t in &scans {
        if t.shape().first() != Some(&batch) || t.shape().get(1) != Some(&max_len) {
            bail!("every scan input needs batch size {batch} and length {max_len}, got shape {:?}", t.shape());
        }
    }
    let lens: Vec<usize> = match lens {
        None => vec![max_len; batch],
        Some(t) => {
            let v = crate::util::ints(t)?;
            if v.len() != batch || v.iter().any(|&l| l < 0 || l as usize > max_len) {
                bail!("'sequence_lens' must hold {batch} lengths in 0..={max_len}, got {v:?}");
            }
            v.iter().map(|&l| l as usize).collect()
        }
    };
    let plan = Plan { in_axes: vec![0; m], in_reverse: flags(ctx, "directions", m)?, out_axes: vec![0; k], out_reverse: vec![false; k] };
    let mut final_states: Vec<Vec<Tensor>> = vec![Vec::new(); n_states];
    let mut outputs: Vec<Vec<Tensor>> = vec![Vec::new(); k];
    for (b, &len) in lens.iter().enumerate() {
        let st: Vec<Value> = states.iter().map(|t| select(t, 0, b).map(Value::Tensor)).collect::<Result<_, _>>()?;
        let sc: Vec<Tensor> = scans.iter().map(|t| select(t, 0, b).and_then(|s| narrow(&s, 0, 0, len))).collect::<Result<_, _>>()?;
        let sc_refs: Vec<&Tensor> = sc.iter().collect();
        let (st, outs) = run_scan(ctx, body, st, &sc_refs, &plan, Some(len))?;
        for (acc, v) in final_states.iter_mut().zip(st) {
            acc.push(value_tensor(v, "a Scan state")?);
        }
        for (acc, t) in outputs.iter_mut().zip(outs) {
            acc.push(pad_to(t, max_len)?);
        }
    }
    let mut result = Vec::with_capacity(n_states + k);
    for (i, parts) in final_states.iter().chain(&outputs).enumerate() {
        let refs: Vec<&Tensor> = parts.iter().collect();
        if refs.is_empty() {
            bail!("Scan output {i} is empty: the batch has no elements");
        }
        result.push(Value::Tensor(stack(&refs, 0)?));
    }
    Ok(result)
}

/// Pads axis 0 of `t` with zeros up to `len` (opset-8 outputs of shorter sequences).
fn pad_to(t: Tensor, len: usize) -> Result<Tensor, OpError> {
    let have = t.shape().first().copied().unwrap_or(0);
    if have >= len {
        return Ok(t);
    }
    let mut shape = t.shape().to_vec();
    shape[0] = len - have;
    let zeros = Tensor::zeros(t.dtype(), shape);
    concat(&[&t, &zeros], 0)
}

/// One scan over `scans` (no batch axis): returns the final states and the scan outputs.
/// `len` is the number of iterations when known up front (opset 8 with `sequence_lens`).
fn run_scan(
    ctx: &OpCtx,
    body: &Graph,
    mut states: Vec<Value>,
    scans: &[&Tensor],
    plan: &Plan,
    len: Option<usize>,
) -> Result<(Vec<Value>, Vec<Tensor>), OpError> {
    let n_states = states.len();
    let mut steps = len;
    for (t, &ax) in scans.iter().zip(&plan.in_axes) {
        let n = t.shape().get(ax).copied().unwrap_or(0);
        match steps {
            Some(s) if s != n => bail!("scan inputs disagree on the sequence length: {s} vs {n}"),
            _ => steps = Some(n),
        }
    }
    let steps = steps.unwrap_or(0);
    let k = plan.out_axes.len();
    let mut per_iter: Vec<Vec<Tensor>> = vec![Vec::with_capacity(steps); k];
    for t in 0..steps {
        let mut body_in = std::mem::take(&mut states);
        for ((x, &ax), &rev) in scans.iter().zip(&plan.in_axes).zip(&plan.in_reverse) {
            body_in.push(Value::Tensor(select(x, ax, if rev { steps - 1 - t } else { t })?));
        }
        let outs = ctx.run_subgraph(body, body_in)?;
        if outs.len() != n_states + k {
            bail!("the body produced {} outputs, expected {}", outs.len(), n_states + k);
        }
        let mut outs = outs.into_iter();
        states = outs.by_ref().take(n_states).collect();
        for (acc, v) in per_iter.iter_mut().zip(outs) {
            acc.push(value_tensor(v, "a scan output")?);
        }
    }
    let mut outputs = Vec::with_capacity(k);
    for (j, mut parts) in per_iter.into_iter().enumerate() {
        if plan.out_reverse[j] {
            parts.reverse();
        }
        let Some(first) = parts.first() else {
            outputs.push(empty_scan_output(body, n_states + j));
            continue;
        };
        let ax = axis(plan.out_axes[j], first.rank() + 1)?;
        let refs: Vec<&Tensor> = parts.iter().collect();
        outputs.push(stack(&refs, ax)?);
    }
    Ok((states, outputs))
}

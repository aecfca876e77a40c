//! Gather, GatherElements and GatherND.

use super::common::{axis, gather_flat, index_map, wrap_index};
use crate::util::{ints, req, strides};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// Gather: picks entries of axis `axis` of the data by index (negative indices count back);
/// output shape `data[..axis] + indices + data[axis + 1..]`.
pub fn gather(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, ind) = (req(inputs, 0)?, req(inputs, 1)?);
    let ax = axis(ctx.attr_i("axis", 0), x.rank())?;
    if x.rank() == 0 {
        bail!("Gather needs data of rank 1 or more");
    }
    let dim = x.shape()[ax];
    let picks: Vec<usize> = ints(ind)?.iter().map(|&i| wrap_index(i, dim)).collect::<Result<_, _>>()?;
    let outer: usize = x.shape()[..ax].iter().product();
    let inner: usize = x.shape()[ax + 1..].iter().product();
    let mut idx = Vec::with_capacity(outer * picks.len() * inner);
    for o in 0..outer {
        for &p in &picks {
            let base = (o * dim + p) * inner;
            idx.extend(base..base + inner);
        }
    }
    let shape = [&x.shape()[..ax], ind.shape(), &x.shape()[ax + 1..]].concat();
    Ok(vec![gather_flat(x, shape, &idx)?])
}

/// GatherElements: `out[i] = data[i with axis coordinate replaced by indices[i]]`.
pub fn gather_elements(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, ind) = (req(inputs, 0)?, req(inputs, 1)?);
    if x.rank() != ind.rank() || x.rank() == 0 {
        bail!("data {:?} and indices {:?} must have the same rank (at least 1)", x.shape(), ind.shape());
    }
    let ax = axis(ctx.attr_i("axis", 0), x.rank())?;
    let st = strides(x.shape());
    let iv = ints(ind)?;
    let mut k = 0;
    let mut bad = None;
    let idx = index_map(ind.shape(), |o| {
        let mut f = 0;
        for (a, (&i, &s)) in o.iter().zip(&st).enumerate() {
            let c = if a == ax {
                match wrap_index(iv[k], x.shape()[a]) {
                    Ok(c) => c,
                    Err(e) => {
                        bad.get_or_insert(e);
                        0
                    }
                }
            } else {
                i
            };
            f += c * s;
        }
        k += 1;
        f
    });
    if let Some(e) = bad {
        return Err(e);
    }
    Ok(vec![gather_flat(x, ind.shape().to_vec(), &idx)?])
}

/// GatherND: each innermost row of `indices` addresses a slice of the data; the first
/// `batch_dims` dims of data and indices are shared.
pub fn gather_nd(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (x, ind) = (req(inputs, 0)?, req(inputs, 1)?);
    let b = ctx.attr_i("batch_dims", 0);
    let plan = NdPlan::new(x.shape(), ind.shape(), b)?;
    let iv = ints(ind)?;
    let mut idx = Vec::with_capacity(plan.count * plan.inner);
    for p in 0..plan.count {
        let base = plan.offset(p, &iv[p * plan.m..(p + 1) * plan.m], x.shape())?;
        idx.extend(base..base + plan.inner);
    }
    let shape = [&ind.shape()[..ind.rank() - 1], &x.shape()[plan.b + plan.m..]].concat();
    Ok(vec![gather_flat(x, shape, &idx)?])
}

/// How GatherND/ScatterND index rows map to data offsets.
pub struct NdPlan {
    /// Batch dims.
    pub b: usize,
    /// Length of an index row.
    pub m: usize,
    /// Number of index rows.
    pub count: usize,
    /// Elements of the slice each row addresses.
    pub inner: usize,
    /// Index rows per batch entry.
    rows_per_batch: usize,
    strides: Vec<usize>,
}

impl NdPlan {
    pub fn new(data: &[usize], ind: &[usize], b: i64) -> Result<NdPlan, OpError> {
        let (r, q) = (data.len(), ind.len());
        if q == 0 || r == 0 {
            bail!("data {data:?} and indices {ind:?} must have rank 1 or more");
        }
        let m = ind[q - 1];
        let b = usize::try_from(b)
            .ok()
            .filter(|&b| b < q && b < r)
            .ok_or_else(|| OpError::Invalid(format!("attribute 'batch_dims' must be in [0, {}), got {b}", q.min(r))))?;
        if m + b > r {
            bail!("index rows of length {m} with {b} batch dims exceed the data rank {r}");
        }
        if data[..b] != ind[..b] {
            bail!("the batch dims of data {data:?} and indices {ind:?} differ");
        }
        let count: usize = ind[..q - 1].iter().product();
        let batches: usize = ind[..b].iter().product();
        Ok(NdPlan {
            b,
            m,
            count,
            inner: data[b + m..].iter().product(),
            rows_per_batch: count.checked_div(batches).unwrap_or(0),
            strides: strides(data),
        })
    }

    /// Flat data offset of index row `p` (its values `row`, negatives wrapped).
    pub fn offset(&self, p: usize, row: &[i64], data: &[usize]) -> Result<usize, OpError> {
        let batch = p.checked_div(self.rows_per_batch).unwrap_or(0);
        let batch_stride = if self.b == 0 { 0 } else { self.strides[self.b - 1] };
        let mut off = batch * batch_stride;
        for (k, &i) in row.iter().enumerate() {
            off += wrap_index(i, data[self.b + k])? * self.strides[self.b + k];
        }
        Ok(off)
    }
}

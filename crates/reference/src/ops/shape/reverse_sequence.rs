//! ReverseSequence.

use super::common::{flat, gather_flat, index_map};
use crate::util::{ints, req, strides};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

/// ReverseSequence: for each batch entry `b`, reverses the first `sequence_lens[b]` entries
/// along the time axis.
pub fn reverse_sequence(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let lens = ints(req(inputs, 1)?)?;
    let (ta, ba) = (ctx.attr_i("time_axis", 0), ctx.attr_i("batch_axis", 1));
    if x.rank() < 2 || !matches!((ta, ba), (0, 1) | (1, 0)) {
        bail!("time_axis and batch_axis must be 0 and 1 (either way) of an input of rank 2 or more, got {ta}, {ba} for {:?}", x.shape());
    }
    let (ta, ba) = (ta as usize, ba as usize);
    let (steps, batch) = (x.shape()[ta], x.shape()[ba]);
    if lens.len() != batch || lens.iter().any(|&l| l < 0 || l as usize > steps) {
        bail!("sequence_lens {lens:?} must hold {batch} lengths in [0, {steps}]");
    }
    let st = strides(x.shape());
    let mut pos = vec![0usize; x.rank()];
    let idx = index_map(x.shape(), |o| {
        pos.copy_from_slice(o);
        let len = lens[o[ba]] as usize;
        if o[ta] < len {
            pos[ta] = len - 1 - o[ta];
        }
        flat(&pos, &st)
    });
    Ok(vec![gather_flat(x, x.shape().to_vec(), &idx)?])
}

//! StringConcat: elementwise concatenation of two broadcast string tensors.

use crate::util::{broadcast_index, broadcast_shapes, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Data, Tensor};

pub fn string_concat(_ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (a, b) = (req(inputs, 0)?, req(inputs, 1)?);
    let (Data::String(av), Data::String(bv)) = (a.data(), b.data()) else {
        bail!("StringConcat needs string tensors, got {} and {}", a.dtype(), b.dtype());
    };
    let shape = broadcast_shapes(&[a.shape(), b.shape()])?;
    let ia = broadcast_index(a.shape(), &shape);
    let ib = broadcast_index(b.shape(), &shape);
    let out: Vec<String> = ia.iter().zip(&ib).map(|(&i, &j)| format!("{}{}", av[i], bv[j])).collect();
    Ok(vec![Tensor::new(shape, Data::String(out))?])
}

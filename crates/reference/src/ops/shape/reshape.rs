//! Ops that keep the elements and change only the shape: Reshape, Flatten, Squeeze, Unsqueeze.

use super::common::{axes_list, checked_shape};
use crate::util::{ints, opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

fn with_shape(x: &Tensor, shape: Vec<usize>) -> Result<Vec<Tensor>, OpError> {
    Ok(vec![Tensor::new(shape, x.data().clone())?])
}

/// Reshape: `shape` attribute before opset 5, input after. A 0 copies the input's dim at
/// that position (unless `allowzero`), one -1 is inferred from the element count.
pub fn reshape(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let spec = match opt(inputs, 1) {
        Some(s) => ints(s)?,
        None => ctx.req_ints("shape")?.to_vec(),
    };
    let allowzero = ctx.attr_i("allowzero", 0) != 0;
    let mut dims = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            0 if !allowzero => match x.shape().get(i) {
                Some(&k) => dims.push(k as i64),
                None => bail!("shape {spec:?} copies dim {i} (a 0) but the input has rank {}", x.rank()),
            },
            -1 if infer.is_none() => {
                infer = Some(i);
                dims.push(1);
            }
            d if d < 0 => bail!("shape {spec:?} has an invalid dim {d} (one -1 at most)"),
            d => dims.push(d),
        }
    }
    if allowzero && infer.is_some() && dims.contains(&0) {
        bail!("shape {spec:?} has both a 0 and a -1 with allowzero");
    }
    let known: usize = checked_shape(&dims)?.iter().product();
    if let Some(i) = infer {
        if known == 0 || x.len() % known != 0 {
            bail!("cannot infer the -1 of shape {spec:?} for {} elements (input {:?})", x.len(), x.shape());
        }
        dims[i] = (x.len() / known) as i64;
    }
    let shape = checked_shape(&dims)?;
    if shape.iter().product::<usize>() != x.len() {
        bail!("cannot reshape {:?} ({} elements) to {shape:?}", x.shape(), x.len());
    }
    with_shape(x, shape)
}

/// Flatten: a 2-D tensor `(prod(dims[..axis]), prod(dims[axis..]))`.
pub fn flatten(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let r = x.rank() as i64;
    let a = ctx.attr_i("axis", 1);
    let axis = if a < 0 { a + r } else { a };
    if !(0..=r).contains(&axis) {
        bail!("attribute 'axis' must be in [{}, {r}], got {a}", -r);
    }
    let (outer, inner) = x.shape().split_at(axis as usize);
    with_shape(x, vec![outer.iter().product(), inner.iter().product()])
}

/// The `axes` of Squeeze/Unsqueeze: attribute before opset 13, optional input after.
fn axes_of(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Option<Vec<i64>>, OpError> {
    Ok(match opt(inputs, 1) {
        Some(a) => Some(ints(a)?),
        None => ctx.attr_ints("axes").map(<[i64]>::to_vec),
    })
}

/// Squeeze: removes the given size-1 axes, or every size-1 axis when none are given.
pub fn squeeze(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let drop = match axes_of(ctx, inputs)? {
        Some(a) => {
            let axes = axes_list(&a, x.rank())?;
            if let Some(&bad) = axes.iter().find(|&&ax| x.shape()[ax] != 1) {
                bail!("cannot squeeze axis {bad} of shape {:?}: its size is not 1", x.shape());
            }
            axes
        }
        None => (0..x.rank()).filter(|&ax| x.shape()[ax] == 1).collect(),
    };
    let shape = x.shape().iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, &d)| d).collect();
    with_shape(x, shape)
}

/// Unsqueeze: inserts size-1 axes at the given positions of the output.
pub fn unsqueeze(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let Some(a) = axes_of(ctx, inputs)? else { bail!("Unsqueeze needs axes") };
    let rank = x.rank() + a.len();
    let axes = axes_list(&a, rank)?;
    let mut dims = x.shape().iter().copied();
    let shape = (0..rank).map(|i| if axes.contains(&i) { 1 } else { dims.next().unwrap_or(1) }).collect();
    with_shape(x, shape)
}

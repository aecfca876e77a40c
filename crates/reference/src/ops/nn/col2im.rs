//! Col2Im: sums sliding blocks (N, C * prod(block), L) back into images (N, C, image...).

use super::common::{Window, col2im, floats, from_f64, numel};
use crate::util::{ints, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

pub fn col2im_op(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let image = ints(req(inputs, 1)?)?;
    let block = ints(req(inputs, 2)?)?;
    if image.len() != block.len() || image.iter().chain(&block).any(|&v| v < 1) {
        bail!("image_shape {image:?} and block_shape {block:?} must be positive and of equal length");
    }
    let image: Vec<usize> = image.iter().map(|&v| v as usize).collect();
    let block: Vec<usize> = block.iter().map(|&v| v as usize).collect();
    let win = Window::new(ctx, &image, &block, false)?;
    let (kn, l) = (win.kernel_size(), win.output_size());
    let xs = x.shape();
    if xs.len() != 3 || xs[1] % kn != 0 || xs[2] != l {
        bail!("Col2Im input must be (N, C * {kn}, {l}), got {xs:?}");
    }
    let (batch, c) = (xs[0], xs[1] / kn);
    let isz = win.input_size();
    let offsets = win.offsets();
    let xv = floats(x, "input")?;
    let mut y = vec![0.0; numel(&[batch, c, isz])?];
    for b in 0..batch {
        col2im(&xv[b * c * kn * l..(b + 1) * c * kn * l], c, &win, &offsets, &mut y[b * c * isz..(b + 1) * c * isz]);
    }
    let mut shape = vec![batch, c];
    shape.extend(&image);
    Ok(vec![from_f64(x.dtype(), shape, &y)?])
}

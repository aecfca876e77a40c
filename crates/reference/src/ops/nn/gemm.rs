//! Gemm: `Y = alpha * A' * B' + beta * C`, with optional transposes and C broadcast to (M, N).

use super::common::{floats, from_f64, gemm_acc, transpose};
use crate::util::{broadcast_index, opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

pub fn gemm(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let (a, b) = (req(inputs, 0)?, req(inputs, 1)?);
    if a.rank() != 2 || b.rank() != 2 {
        bail!("Gemm inputs A and B must be 2-D, got shapes {:?} and {:?}", a.shape(), b.shape());
    }
    let dt = a.dtype();
    let is_int = dt.is_int();
    let (av, bv) = if is_int { (a.to_f64_vec()?, b.to_f64_vec()?) } else { (floats(a, "A")?, floats(b, "B")?) };
    let alpha = ctx.attr_f("alpha", 1.0) as f64;
    let beta = ctx.attr_f("beta", 1.0) as f64;
    let (ta, tb) = (ctx.attr_i("transA", 0) != 0, ctx.attr_i("transB", 0) != 0);
    let (ar, ac) = (a.shape()[0], a.shape()[1]);
    let (br, bc) = (b.shape()[0], b.shape()[1]);
    let (m, k, av) = if ta { (ac, ar, transpose(ar, ac, &av)) } else { (ar, ac, av) };
    let (k2, n, bv) = if tb { (bc, br, transpose(br, bc, &bv)) } else { (br, bc, bv) };
    if k != k2 {
        bail!("Gemm inner dimensions differ: A' is {m}x{k}, B' is {k2}x{n}");
    }
    let mut y = vec![0.0; m * n];
    gemm_acc(m, k, n, &av, &bv, &mut y);
    y.iter_mut().for_each(|v| *v *= alpha);
    if let Some(c) = opt(inputs, 2) {
        let cs = c.shape();
        // Unidirectional broadcast of C to (M, N).
        let ok = cs.len() <= 2 && cs.iter().rev().zip([n, m]).all(|(&d, want)| d == 1 || d == want);
        if !ok {
            bail!("Gemm C of shape {cs:?} cannot broadcast to ({m}, {n})");
        }
        let cv = c.to_f64_vec()?;
        for (v, i) in y.iter_mut().zip(broadcast_index(cs, &[m, n])) {
            *v += beta * cv[i];
        }
    }
    Ok(vec![from_f64(dt, vec![m, n], &y)?])
}

//! SpaceToDepth and DepthToSpace.

use super::common::{flat, gather_flat, index_map};
use crate::util::{req, strides};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

fn dims4(x: &Tensor, b: i64) -> Result<([usize; 4], usize), OpError> {
    let [n, c, h, w] = *x.shape() else { bail!("input must be 4-D (N, C, H, W), got {:?}", x.shape()) };
    let b = usize::try_from(b)
        .ok()
        .filter(|&b| b > 0)
        .ok_or_else(|| OpError::Invalid(format!("attribute 'blocksize' must be positive, got {b}")))?;
    Ok(([n, c, h, w], b))
}

/// SpaceToDepth: `out[n, (bh * b + bw) * C + c, h, w] = in[n, c, h * b + bh, w * b + bw]`.
pub fn space_to_depth(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let ([n, c, h, w], b) = dims4(x, ctx.req_i("blocksize")?)?;
    if h % b != 0 || w % b != 0 {
        bail!("H and W of {:?} must be multiples of the blocksize {b}", x.shape());
    }
    let st = strides(x.shape());
    let shape = vec![n, c * b * b, h / b, w / b];
    let idx = index_map(&shape, |o| {
        let (blk, ch) = (o[1] / c, o[1] % c);
        flat(&[o[0], ch, o[2] * b + blk / b, o[3] * b + blk % b], &st)
    });
    Ok(vec![gather_flat(x, shape, &idx)?])
}

/// DepthToSpace: the inverse of SpaceToDepth (`DCR`), or with channel-major depth (`CRD`).
pub fn depth_to_space(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let ([n, c, h, w], b) = dims4(x, ctx.req_i("blocksize")?)?;
    if c % (b * b) != 0 {
        bail!("C of {:?} must be a multiple of blocksize² ({})", x.shape(), b * b);
    }
    let crd = match ctx.attr_s("mode", "DCR") {
        "DCR" => false,
        "CRD" => true,
        m => bail!("attribute 'mode' must be DCR or CRD, got '{m}'"),
    };
    let oc = c / (b * b);
    let st = strides(x.shape());
    let shape = vec![n, oc, h * b, w * b];
    let idx = index_map(&shape, |o| {
        let (bh, bw) = (o[2] % b, o[3] % b);
        let ch = if crd { o[1] * b * b + bh * b + bw } else { (bh * b + bw) * oc + o[1] };
        flat(&[o[0], ch, o[2] / b, o[3] / b], &st)
    });
    Ok(vec![gather_flat(x, shape, &idx)?])
}

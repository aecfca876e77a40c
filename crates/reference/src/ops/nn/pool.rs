//! Windowed pooling: MaxPool (with Indices), AveragePool and LpPool; and their Global forms.

use super::common::{Window, from_f64, numel};
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{DType, Tensor};

/// X's values as f64 (MaxPool also takes int8/uint8), its planes (N*C) and the window.
fn setup(ctx: &OpCtx, x: &Tensor, ints_ok: bool) -> Result<(Vec<f64>, usize, Window), OpError> {
    let dt = x.dtype();
    if !(dt.is_float() || ints_ok && matches!(dt, DType::I8 | DType::U8)) {
        bail!("{} does not take {dt} inputs", ctx.node.op_type);
    }
    if x.rank() < 3 {
        bail!("{} needs an input of rank >= 3, got shape {:?}", ctx.node.op_type, x.shape());
    }
    let k = ctx.req_ints("kernel_shape")?;
    if k.len() != x.rank() - 2 || k.iter().any(|&v| v < 1) {
        bail!("attribute 'kernel_shape' must hold {} positive values, got {k:?}", x.rank() - 2);
    }
    let kernel: Vec<usize> = k.iter().map(|&v| v as usize).collect();
    let ceil = ctx.attr_i("ceil_mode", 0) != 0;
    let win = Window::new(ctx, &x.shape()[2..], &kernel, ceil)?;
    Ok((x.to_f64_vec()?, x.shape()[0] * x.shape()[1], win))
}

fn out_shape(x: &Tensor, win: &Window) -> Vec<usize> {
    let mut s = x.shape()[..2].to_vec();
    s.extend(&win.output);
    s
}

pub fn max_pool(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let (xv, planes, win) = setup(ctx, x, true)?;
    let order = ctx.attr_i("storage_order", 0);
    if order != 0 && order != 1 {
        bail!("attribute 'storage_order' must be 0 or 1, got {order}");
    }
    let offsets = win.offsets();
    let (pn, isz) = (win.output_size(), win.input_size());
    // Column-major storage order maps each row-major spatial offset to its column-major one.
    let remap: Option<Vec<usize>> = (order == 1).then(|| {
        let rm = crate::util::strides(&win.input);
        let mut cm = vec![1usize; win.input.len()];
        for d in 1..cm.len() {
            cm[d] = cm[d - 1] * win.input[d - 1];
        }
        (0..isz).map(|off| (0..rm.len()).map(|d| (off / rm[d]) % win.input[d] * cm[d]).sum()).collect()
    });
    let total = numel(&[planes, pn])?;
    let mut y = vec![f64::NEG_INFINITY; total];
    let mut idx = vec![-1i64; total];
    for pl in 0..planes {
        let plane = &xv[pl * isz..(pl + 1) * isz];
        let (yb, ib) = (&mut y[pl * pn..(pl + 1) * pn], &mut idx[pl * pn..(pl + 1) * pn]);
        for kk in offsets.chunks(pn.max(1)) {
            for (p, &off) in kk.iter().enumerate() {
                if off >= 0 && (plane[off as usize] > yb[p] || ib[p] < 0) {
                    yb[p] = plane[off as usize];
                    ib[p] = off as i64;
                }
            }
        }
        for i in ib.iter_mut().filter(|i| **i >= 0) {
            let sp = remap.as_ref().map_or(*i as usize, |r| r[*i as usize]);
            *i = (pl * isz + sp) as i64;
        }
    }
    let shape = out_shape(x, &win);
    Ok(vec![from_f64(x.dtype(), shape.clone(), &y)?, Tensor::from_vec(shape, idx)?])
}

/// Sums `f(x)` over each window; returns the sums and, per output, how many positions count
/// towards the average: with `count_pad` the positions in the image or its padding, else
/// those in the image.
///
/// A `ceil_mode` window may reach past the end padding. Those positions count only when the
/// window is dilated, which is what the ONNX test for that case expects; onnxruntime and
/// PyTorch never count them, so undilated windows (the ones real models use) follow them.
fn window_sums(xv: &[f64], planes: usize, win: &Window, count_pad: bool, f: impl Fn(f64) -> f64) -> (Vec<f64>, Vec<f64>) {
    let offsets = win.offsets();
    let (pn, isz) = (win.output_size(), win.input_size());
    let mut counts = vec![0.0; pn];
    if count_pad {
        let dilated = win.dilations.iter().any(|&d| d > 1);
        // Separable: per axis, how many taps of output position o fall before the end padding.
        let per_axis: Vec<Vec<f64>> = (0..win.input.len())
            .map(|d| {
                let limit = win.input[d] + win.pad_begin[d] + win.pad_end[d];
                (0..win.output[d])
                    .map(|o| {
                        let inside = (0..win.kernel[d]).filter(|k| o * win.strides[d] + k * win.dilations[d] < limit).count();
                        if dilated { win.kernel[d] as f64 } else { inside as f64 }
                    })
                    .collect()
            })
            .collect();
        let mut idx = vec![0usize; per_axis.len()];
        for c in counts.iter_mut() {
            *c = idx.iter().enumerate().map(|(d, &o)| per_axis[d][o]).product();
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < win.output[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    } else {
        for kk in offsets.chunks(pn.max(1)) {
            for (p, &off) in kk.iter().enumerate() {
                if off >= 0 {
                    counts[p] += 1.0;
                }
            }
        }
    }
    let mut sums = vec![0.0; planes * pn];
    for pl in 0..planes {
        let plane = &xv[pl * isz..(pl + 1) * isz];
        let sb = &mut sums[pl * pn..(pl + 1) * pn];
        for kk in offsets.chunks(pn.max(1)) {
            for (p, &off) in kk.iter().enumerate() {
                if off >= 0 {
                    sb[p] += f(plane[off as usize]);
                }
            }
        }
    }
    (sums, counts)
}

pub fn average_pool(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let (xv, planes, win) = setup(ctx, x, false)?;
    let count_pad = ctx.attr_i("count_include_pad", 0) != 0;
    let (mut sums, counts) = window_sums(&xv, planes, &win, count_pad, |v| v);
    let pn = win.output_size().max(1);
    for (i, s) in sums.iter_mut().enumerate() {
        *s /= counts[i % pn];
    }
    Ok(vec![from_f64(x.dtype(), out_shape(x, &win), &sums)?])
}

pub fn lp_pool(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    let (xv, planes, win) = setup(ctx, x, false)?;
    let p = lp_norm(ctx)?;
    let (sums, _) = window_sums(&xv, planes, &win, false, |v| v.abs().powf(p));
    let y: Vec<f64> = sums.iter().map(|s| s.powf(1.0 / p)).collect();
    Ok(vec![from_f64(x.dtype(), out_shape(x, &win), &y)?])
}

/// LpPool's `p`: an int attribute (a float before opset 2).
fn lp_norm(ctx: &OpCtx) -> Result<f64, OpError> {
    let p = match ctx.node.attr_float("p") {
        Some(f) => f as f64,
        None => ctx.attr_i("p", 2) as f64,
    };
    if p <= 0.0 {
        bail!("attribute 'p' must be positive, got {p}");
    }
    Ok(p)
}

/// Global pooling: reduces every spatial axis of (N, C, ...) to 1 with `f(values)`.
fn global(x: &Tensor, f: impl Fn(&[f64]) -> f64) -> Result<Vec<Tensor>, OpError> {
    if !x.dtype().is_float() || x.rank() < 2 {
        bail!("global pooling needs a float input of rank >= 2, got {} {:?}", x.dtype(), x.shape());
    }
    let xv = x.to_f64_vec()?;
    let planes = x.shape()[0] * x.shape()[1];
    let isz: usize = x.shape()[2..].iter().product();
    let y: Vec<f64> = (0..planes).map(|p| f(&xv[p * isz..(p + 1) * isz])).collect();
    let mut shape = x.shape()[..2].to_vec();
    shape.extend(std::iter::repeat_n(1, x.rank() - 2));
    Ok(vec![from_f64(x.dtype(), shape, &y)?])
}

pub fn global_max_pool(_: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    global(req(inputs, 0)?, |v| v.iter().copied().fold(f64::NEG_INFINITY, f64::max))
}

pub fn global_average_pool(_: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    global(req(inputs, 0)?, |v| v.iter().sum::<f64>() / v.len() as f64)
}

pub fn global_lp_pool(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let p = lp_norm(ctx)?;
    global(req(inputs, 0)?, |v| v.iter().map(|x| x.abs().powf(p)).sum::<f64>().powf(1.0 / p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(input: usize, kernel: usize, stride: usize, dilation: usize, pads: (usize, usize), output: usize) -> Window {
        Window {
            input: vec![input],
            kernel: vec![kernel],
            strides: vec![stride],
            dilations: vec![dilation],
            pad_begin: vec![pads.0],
            pad_end: vec![pads.1],
            output: vec![output],
        }
    }

    #[test]
    fn count_include_pad_stops_at_the_end_padding() {
        // Input 4, kernel 3, stride 2, ceil_mode: windows at 0..3 and 2..5; the second reaches
        // one past the input (no padding there), so it averages 2 values, as onnxruntime and
        // PyTorch do.
        let x = [1.0, 2.0, 3.0, 4.0];
        let (sums, counts) = window_sums(&x, 1, &win(4, 3, 2, 1, (0, 0), 2), true, |v| v);
        assert_eq!((sums.clone(), counts), (vec![6.0, 7.0], vec![3.0, 2.0]));
        // With one pad at the end the padded position counts, the one past it does not.
        let (_, counts) = window_sums(&x, 1, &win(4, 3, 2, 1, (0, 1), 2), true, |v| v);
        assert_eq!(counts, vec![3.0, 3.0]);
        // Without count_include_pad only image positions count.
        let (_, counts) = window_sums(&x, 1, &win(4, 3, 2, 1, (1, 1), 3), false, |v| v);
        assert_eq!(counts, vec![2.0, 3.0, 1.0]);
        // Dilated windows count every tap (the ONNX test for that case expects it).
        let (_, counts) = window_sums(&x, 1, &win(4, 2, 2, 2, (0, 0), 2), true, |v| v);
        assert_eq!(counts, vec![2.0, 2.0]);
    }
}

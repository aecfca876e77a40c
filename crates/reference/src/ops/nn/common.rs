//! Helpers shared by the nn kernels: float conversion, a plain GEMM, and the sliding-window
//! geometry (pads, strides, dilations) that convolution and pooling share.

use crate::{OpCtx, OpError, bail};
use kiln_tensor::{DType, Data, Tensor};

/// A float tensor's elements as f64; any other element type is refused.
pub fn floats(t: &Tensor, what: &str) -> Result<Vec<f64>, OpError> {
    if !t.dtype().is_float() {
        bail!("{what} must be a float tensor, got {}", t.dtype());
    }
    Ok(t.to_f64_vec()?)
}

/// Builds a tensor of `dtype` from f64 values (rounded to nearest for floats).
pub fn from_f64(dtype: DType, shape: Vec<usize>, v: &[f64]) -> Result<Tensor, OpError> {
    Ok(Tensor::new(shape, Data::from_f64_vec(dtype, v)?)?)
}

/// Element product of a shape, refusing overflow.
pub fn numel(shape: &[usize]) -> Result<usize, OpError> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| OpError::Invalid(format!("shape {shape:?} is too large")))
}

/// A number the GEMM loop can accumulate: f64 for floats, i64 (wrapping) for integer ops.
pub trait Acc: Copy + Default + PartialEq {
    fn add(self, b: Self) -> Self;
    fn mul(self, b: Self) -> Self;
}
impl Acc for f64 {
    fn add(self, b: f64) -> f64 {
        self + b
    }
    fn mul(self, b: f64) -> f64 {
        self * b
    }
}
impl Acc for i64 {
    fn add(self, b: i64) -> i64 {
        self.wrapping_add(b)
    }
    fn mul(self, b: i64) -> i64 {
        self.wrapping_mul(b)
    }
}

/// `c (m x n) += a (m x k) * b (k x n)`, all row-major and contiguous, in i-k-j order.
pub fn gemm_acc<T: Acc>(m: usize, k: usize, n: usize, a: &[T], b: &[T], c: &mut [T]) {
    for i in 0..m {
        let crow = &mut c[i * n..(i + 1) * n];
        for (p, &av) in a[i * k..(i + 1) * k].iter().enumerate() {
            let brow = &b[p * n..(p + 1) * n];
            for (cv, &bv) in crow.iter_mut().zip(brow) {
                *cv = cv.add(av.mul(bv));
            }
        }
    }
}

/// Row-major transpose of an `r x c` matrix.
pub fn transpose<T: Copy>(r: usize, c: usize, a: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(r * c);
    for j in 0..c {
        for i in 0..r {
            out.push(a[i * c + j]);
        }
    }
    out
}

/// Sliding-window geometry over the spatial axes of an image: the same for convolution
/// (with its kernel) and pooling (with its window).
#[derive(Clone, Debug)]
pub struct Window {
    pub input: Vec<usize>,
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pad_begin: Vec<usize>,
    pub pad_end: Vec<usize>,
    pub output: Vec<usize>,
}

/// The offset [`Window::offsets`] gives a window position outside the image (in the padding,
/// or past it with `ceil_mode`).
pub const PAD: isize = -1;

/// A per-axis attribute of `n` positive values, or `default` for every axis when absent.
pub fn axis_attr(ctx: &OpCtx, name: &str, n: usize, default: usize) -> Result<Vec<usize>, OpError> {
    match ctx.attr_ints(name) {
        None => Ok(vec![default; n]),
        Some(v) if v.len() == n && v.iter().all(|&x| x >= 1) => Ok(v.iter().map(|&x| x as usize).collect()),
        Some(v) => bail!("attribute '{name}' must hold {n} positive values, got {v:?}"),
    }
}

impl Window {
    /// Reads `strides`, `dilations`, `pads` and `auto_pad` for an image of spatial shape
    /// `input` and a window of `kernel`; `ceil_mode` rounds the output size up (pooling).
    pub fn new(ctx: &OpCtx, input: &[usize], kernel: &[usize], ceil_mode: bool) -> Result<Window, OpError> {
        let n = input.len();
        if kernel.len() != n {
            bail!("kernel has {} spatial axes but the input has {n}", kernel.len());
        }
        if kernel.contains(&0) {
            bail!("kernel shape {kernel:?} must be positive");
        }
        let strides = axis_attr(ctx, "strides", n, 1)?;
        let dilations = axis_attr(ctx, "dilations", n, 1)?;
        let auto_pad = ctx.attr_s("auto_pad", "NOTSET");
        let mut pad_begin = vec![0; n];
        let mut pad_end = vec![0; n];
        let mut output = vec![0; n];
        let eff: Vec<usize> = (0..n).map(|i| (kernel[i] - 1) * dilations[i] + 1).collect();
        match auto_pad {
            "NOTSET" => {
                if let Some(p) = ctx.attr_ints("pads") {
                    if p.len() != 2 * n || p.iter().any(|&x| x < 0) {
                        bail!("attribute 'pads' must hold {} non-negative values, got {p:?}", 2 * n);
                    }
                    for i in 0..n {
                        pad_begin[i] = p[i] as usize;
                        pad_end[i] = p[i + n] as usize;
                    }
                }
                for i in 0..n {
                    let total = input[i] + pad_begin[i] + pad_end[i];
                    if total < eff[i] {
                        bail!("window {} (dilated) is larger than the padded input {total} on axis {i}", eff[i]);
                    }
                    let span = total - eff[i];
                    output[i] = if ceil_mode { span.div_ceil(strides[i]) + 1 } else { span / strides[i] + 1 };
                    // A window may not start in the end padding (it would see no input).
                    if ceil_mode && (output[i] - 1) * strides[i] >= input[i] + pad_begin[i] {
                        output[i] -= 1;
                    }
                }
            }
            "VALID" => {
                for i in 0..n {
                    if input[i] < eff[i] {
                        bail!("window {} (dilated) is larger than the input {} on axis {i}", eff[i], input[i]);
                    }
                    let span = input[i] - eff[i];
                    output[i] = if ceil_mode { span.div_ceil(strides[i]) + 1 } else { span / strides[i] + 1 };
                }
            }
            "SAME_UPPER" | "SAME_LOWER" => {
                for i in 0..n {
                    output[i] = input[i].div_ceil(strides[i]);
                    let need = (output[i].max(1) - 1) * strides[i] + eff[i];
                    let total = need.saturating_sub(input[i]);
                    let small = total / 2;
                    if auto_pad == "SAME_UPPER" {
                        pad_begin[i] = small;
                        pad_end[i] = total - small;
                    } else {
                        pad_begin[i] = total - small;
                        pad_end[i] = small;
                    }
                }
            }
            other => bail!("attribute 'auto_pad' must be NOTSET, SAME_UPPER, SAME_LOWER or VALID, got '{other}'"),
        }
        Ok(Window { input: input.to_vec(), kernel: kernel.to_vec(), strides, dilations, pad_begin, pad_end, output })
    }

    pub fn kernel_size(&self) -> usize {
        self.kernel.iter().product()
    }
    pub fn output_size(&self) -> usize {
        self.output.iter().product()
    }
    pub fn input_size(&self) -> usize {
        self.input.iter().product()
    }

    /// For every kernel position `kk` and output position `p`, the flat offset into one
    /// input channel that the window reads, or [`PAD`]; laid out `[kk * P + p]`.
    pub fn offsets(&self) -> Vec<isize> {
        let n = self.input.len();
        // Per axis: for each (k, o), the input coordinate or a marker.
        let axis_tables: Vec<Vec<isize>> = (0..n)
            .map(|d| {
                let mut t = Vec::with_capacity(self.kernel[d] * self.output[d]);
                for k in 0..self.kernel[d] {
                    for o in 0..self.output[d] {
                        let pos = (o * self.strides[d] + k * self.dilations[d]) as isize - self.pad_begin[d] as isize;
                        t.push(if pos >= 0 && (pos as usize) < self.input[d] { pos } else { PAD });
                    }
                }
                t
            })
            .collect();
        let in_strides = crate::util::strides(&self.input);
        let (kn, pn) = (self.kernel_size(), self.output_size());
        let mut out = Vec::with_capacity(kn * pn);
        let mut kidx = vec![0usize; n];
        for _ in 0..kn {
            let mut oidx = vec![0usize; n];
            for _ in 0..pn {
                let mut off = 0isize;
                for d in 0..n {
                    let v = axis_tables[d][kidx[d] * self.output[d] + oidx[d]];
                    if v < 0 {
                        off = PAD;
                    } else if off >= 0 {
                        off += v * in_strides[d] as isize;
                    }
                }
                out.push(off);
                odometer(&mut oidx, &self.output);
            }
            odometer(&mut kidx, &self.kernel);
        }
        out
    }
}

/// Advances a row-major multi-index over `shape` by one.
pub fn odometer(idx: &mut [usize], shape: &[usize]) {
    for d in (0..idx.len()).rev() {
        idx[d] += 1;
        if idx[d] < shape[d] {
            return;
        }
        idx[d] = 0;
    }
}

/// Lays out one image's channels as columns: `col[(c * K + kk) * P + p]` is the input value the
/// kernel position `kk` sees at output position `p` (`pad` in the padding).
pub fn im2col<T: Copy>(image: &[T], channels: usize, w: &Window, offsets: &[isize], pad: T) -> Vec<T> {
    let (kn, pn, isz) = (w.kernel_size(), w.output_size(), w.input_size());
    let mut col = Vec::with_capacity(channels * kn * pn);
    for c in 0..channels {
        let plane = &image[c * isz..(c + 1) * isz];
        for &off in offsets {
            col.push(if off >= 0 { plane[off as usize] } else { pad });
        }
    }
    col
}

/// The reverse of [`im2col`]: adds each column entry back into its image position.
pub fn col2im<T: Acc>(col: &[T], channels: usize, w: &Window, offsets: &[isize], image: &mut [T]) {
    let (kn, pn, isz) = (w.kernel_size(), w.output_size(), w.input_size());
    for c in 0..channels {
        let plane = &mut image[c * isz..(c + 1) * isz];
        let cc = &col[c * kn * pn..(c + 1) * kn * pn];
        for (&off, &v) in offsets.iter().zip(cc) {
            if off >= 0 {
                let o = &mut plane[off as usize];
                *o = o.add(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_mark_padding() {
        // 1-D: input 3, kernel 2, stride 2, one pad each side -> outputs 2.
        let w = Window { input: vec![3], kernel: vec![2], strides: vec![2], dilations: vec![1], pad_begin: vec![1], pad_end: vec![1], output: vec![2] };
        // kk = 0 reads positions -1, 1; kk = 1 reads 0, 2.
        assert_eq!(w.offsets(), vec![PAD, 1, 0, 2]);
        let col = im2col(&[10, 20, 30], 1, &w, &w.offsets(), 0);
        assert_eq!(col, vec![0, 20, 10, 30]);
        let mut img = vec![0i64; 3];
        col2im(&[1, 2, 3, 4], 1, &w, &w.offsets(), &mut img);
        assert_eq!(img, vec![3, 2, 4]);
    }

    #[test]
    fn gemm_is_a_matrix_product() {
        let mut c = vec![0.0; 4];
        gemm_acc(2, 3, 2, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &mut c);
        assert_eq!(c, vec![4.0, 5.0, 10.0, 11.0]);
        assert_eq!(transpose(2, 3, &[1, 2, 3, 4, 5, 6]), vec![1, 4, 2, 5, 3, 6]);
    }
}

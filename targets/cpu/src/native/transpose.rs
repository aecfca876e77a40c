//! `Transpose` of f32 tensors: the output is written in order, the innermost output axis
//! copied as a run when it is also innermost in the input (the common head split/merge of
//! transformers) and gathered with a stride otherwise; outer rows split over threads.

use super::{Lowered, dtype_of, step_ints};
use kiln_ir::{Graph, Node};
use kiln_target::Step;
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.transpose";

pub fn lower(g: &Graph, node: &Node) -> Option<Lowered> {
    (dtype_of(g, node, 0) == Some(DType::F32)).then(|| Lowered { kernel: KERNEL, variant: "default".into() })
}

pub struct TransposeStep {
    perm: Option<Vec<i64>>,
}

impl TransposeStep {
    pub fn load(step: &Step) -> TransposeStep {
        TransposeStep { perm: step_ints(step, "perm") }
    }

    /// The output comes from `pool`: every element is written.
    pub fn run(&mut self, inputs: &[Option<&Tensor>], pool: &mut crate::exec::Pool) -> Result<Tensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input is missing")?;
        let r = x.rank();
        let perm: Vec<usize> = match &self.perm {
            None => (0..r).rev().collect(),
            Some(p) => p
                .iter()
                .map(|&a| usize::try_from(a).ok().filter(|&a| a < r))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("perm {p:?} does not fit rank {r}"))?,
        };
        let mut seen = vec![false; r];
        if perm.len() != r || perm.iter().any(|&a| std::mem::replace(&mut seen[a], true)) {
            return Err(format!("perm {perm:?} is not a permutation of 0..{r}"));
        }
        let shape: Vec<usize> = perm.iter().map(|&a| x.shape()[a]).collect();
        let mut data = pool.take(x.len());
        transpose_into(x.as_slice::<f32>().map_err(|e| e.to_string())?, x.shape(), &perm, &mut data);
        Tensor::from_vec(shape, data).map_err(|e| e.to_string())
    }
}

/// `x` of shape `dims` with its axes permuted (`out` axis i is input axis `perm[i]`).
#[cfg(test)]
pub fn transpose(x: &[f32], dims: &[usize], perm: &[usize]) -> Vec<f32> {
    let mut out = vec![0f32; dims.iter().product()];
    transpose_into(x, dims, perm, &mut out);
    out
}

/// [`transpose`] into `out` (as long as `x`), every element written.
pub fn transpose_into(x: &[f32], dims: &[usize], perm: &[usize], out: &mut [f32]) {
    let r = dims.len();
    let total: usize = dims.iter().product();
    if total == 0 || r == 0 {
        out.copy_from_slice(&x[..total]);
        return;
    }
    if let Some((batch, rows, cols)) = as_batched_2d(dims, perm) {
        transpose_2d(x, batch, rows, cols, out);
        return;
    }
    let mut in_strides = vec![1usize; r];
    for i in (0..r - 1).rev() {
        in_strides[i] = in_strides[i + 1] * dims[i + 1];
    }
    let shape: Vec<usize> = perm.iter().map(|&a| dims[a]).collect();
    let strides: Vec<usize> = perm.iter().map(|&a| in_strides[a]).collect();
    let inner = shape[r - 1];
    let inner_stride = strides[r - 1];
    let row = |o: usize, dst: &mut [f32]| {
        // Source offset of output row `o` (all axes but the last).
        let (mut rem, mut base) = (o, 0usize);
        for i in (0..r - 1).rev() {
            base += (rem % shape[i]) * strides[i];
            rem /= shape[i];
        }
        if inner_stride == 1 {
            dst.copy_from_slice(&x[base..base + inner]);
        } else {
            dst.iter_mut().enumerate().for_each(|(j, d)| *d = x[base + j * inner_stride]);
        }
    };
    if total >= 1 << 16 {
        crate::par::chunks(out, inner, crate::par::ALL, row);
    } else {
        out.chunks_mut(inner).enumerate().for_each(|(o, dst)| row(o, dst));
    }
}

/// When the permutation, with size-1 axes dropped and axes that stay adjacent merged, swaps
/// the last two of at most three axes (NHWC <-> NCHW is `[n, hw, c] -> [n, c, hw]`): the
/// batch count and the rows and columns of each input matrix.
fn as_batched_2d(dims: &[usize], perm: &[usize]) -> Option<(usize, usize, usize)> {
    // Output axes as runs of consecutive input axes.
    let kept: Vec<usize> = perm.iter().copied().filter(|&a| dims[a] != 1).collect();
    let mut runs: Vec<(usize, usize)> = Vec::new(); // (first input axis, size)
    let mut prev: Option<usize> = None;
    for &a in &kept {
        match (prev, runs.last_mut()) {
            // The next kept input axis after `p` (skipping size-1 axes) continues the run.
            (Some(p), Some(run)) if (p + 1..a).all(|i| dims[i] == 1) && a > p => run.1 *= dims[a],
            _ => runs.push((a, dims[a])),
        }
        prev = Some(a);
    }
    let order = |i: usize, j: usize| runs[i].0 < runs[j].0;
    match runs.len() {
        2 if order(1, 0) => Some((1, runs[1].1, runs[0].1)),
        3 if order(0, 2) && order(2, 1) => Some((runs[0].1, runs[2].1, runs[1].1)),
        _ => None,
    }
}

/// `batch` row-major `rows x cols` matrices, each written transposed (`cols x rows`) into
/// `out`. A whole 16 x 16 tile goes as four 8 x 8 register transposes
/// ([`transpose8`](crate::kernels::transpose8)); an edge tile is read as pieces of input rows
/// into a local array and written as contiguous pieces of output rows; a block of output rows (at least 16,
/// more when the rows are short, so that a block holds some 4096 values) is one work item.
fn transpose_2d(x: &[f32], batch: usize, rows: usize, cols: usize, out: &mut [f32]) {
    const T: usize = 16;
    // A few rows (NCHW -> NHWC of an RGB image): the output interleaves them, in order.
    if (2..=4).contains(&rows) {
        let threads = if rows * cols * batch >= 1 << 16 { crate::par::ALL } else { 1 };
        let items: Vec<(usize, &mut [f32])> = out
            .chunks_mut(rows * cols)
            .enumerate()
            .flat_map(|(b, m)| m.chunks_mut(rows * 4096).enumerate().map(move |(k, d)| (b * cols + k * 4096, d)))
            .collect();
        crate::par::run(items, threads, |_, (at, d)| match rows {
            2 => interleave::<2>(x, cols, at, d),
            3 => interleave::<3>(x, cols, at, d),
            _ => interleave::<4>(x, cols, at, d),
        });
        return;
    }
    let bj = (4096 / rows.max(1)).div_ceil(T).max(1) * T;
    let block = |b: usize, j0: usize, dst: &mut [f32]| {
        let jb = dst.len() / rows;
        let src = &x[b * rows * cols..][..rows * cols];
        let mut t = [[0f32; T]; T];
        for jt in (0..jb).step_by(T) {
            let jn = T.min(jb - jt);
            for i0 in (0..rows).step_by(T) {
                let ib = T.min(rows - i0);
                // A whole tile: four 8 x 8 transposes in registers, straight into `dst`.
                if jn == T && ib == T {
                    let mut ok = true;
                    for a in (0..T).step_by(8) {
                        for c in (0..T).step_by(8) {
                            let s = &src[(i0 + a) * cols + j0 + jt + c..];
                            ok &= crate::kernels::transpose8(s, cols, &mut dst[(jt + c) * rows + i0 + a..], rows);
                        }
                    }
                    if ok {
                        continue;
                    }
                }
                for (ii, row) in src[i0 * cols..].chunks(cols).take(ib).enumerate() {
                    for (j, &v) in row[j0 + jt..][..jn].iter().enumerate() {
                        t[j][ii] = v;
                    }
                }
                for (j, tr) in t.iter().take(jn).enumerate() {
                    dst[(jt + j) * rows + i0..][..ib].copy_from_slice(&tr[..ib]);
                }
            }
        }
    };
    let items: Vec<(usize, usize, &mut [f32])> = out
        .chunks_mut(rows * cols)
        .enumerate()
        .flat_map(|(b, m)| m.chunks_mut(bj * rows).enumerate().map(move |(k, d)| (b, k * bj, d)))
        .collect();
    let threads = if rows * cols * batch >= 1 << 16 { crate::par::ALL } else { 1 };
    crate::par::run(items, threads, |_, (b, j0, d)| block(b, j0, d));
}

/// Output rows `at % cols ..` of matrix `at / cols` (`R x cols`, transposed) into `dst`.
fn interleave<const R: usize>(x: &[f32], cols: usize, at: usize, dst: &mut [f32]) {
    let (b, j0) = (at / cols, at % cols);
    let m = &x[b * R * cols..][..R * cols];
    for (j, o) in dst.chunks_exact_mut(R).enumerate() {
        for (i, v) in o.iter_mut().enumerate() {
            *v = m[i * cols + j0 + j];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The element-by-element rule, for checking the fast paths.
    fn naive(x: &[f32], dims: &[usize], perm: &[usize]) -> Vec<f32> {
        let r = dims.len();
        let shape: Vec<usize> = perm.iter().map(|&a| dims[a]).collect();
        let total: usize = dims.iter().product();
        let mut out = vec![0f32; total];
        for (o, v) in out.iter_mut().enumerate() {
            let (mut rem, mut src) = (o, vec![0usize; r]);
            for i in (0..r).rev() {
                src[perm[i]] = rem % shape[i];
                rem /= shape[i];
            }
            let flat = src.iter().zip(dims).fold(0, |acc, (&s, &d)| acc * d + s);
            *v = x[flat];
        }
        out
    }

    #[test]
    fn layout_swaps_and_matrix_transposes_take_the_blocked_path_and_match() {
        let cases: &[(&[usize], &[usize], bool)] = &[
            (&[1, 37, 29, 96], &[0, 3, 1, 2], true),
            (&[2, 5, 7, 3], &[0, 3, 1, 2], true),
            (&[1, 96, 13, 17], &[0, 2, 3, 1], true),
            (&[70, 33], &[1, 0], true),
            (&[2, 3, 70, 90], &[0, 2, 3, 1], true),
            (&[1, 2, 5000], &[0, 2, 1], true),
            (&[3, 1, 40, 1, 20], &[0, 4, 3, 2, 1], true),
            (&[2, 3, 4, 5], &[0, 2, 1, 3], false),
            (&[2, 3, 4, 5], &[3, 2, 1, 0], false),
        ];
        for &(dims, perm, fast) in cases {
            assert_eq!(as_batched_2d(dims, perm).is_some(), fast, "{dims:?} {perm:?}");
            let n: usize = dims.iter().product();
            let x: Vec<f32> = (0..n).map(|v| v as f32).collect();
            assert_eq!(transpose(&x, dims, perm), naive(&x, dims, perm), "{dims:?} {perm:?}");
        }
    }

    #[test]
    fn matches_index_rule() {
        let dims = [2, 3, 4, 5];
        let x: Vec<f32> = (0..120).map(|v| v as f32).collect();
        for perm in [[0, 2, 1, 3], [3, 2, 1, 0], [0, 1, 3, 2], [1, 0, 2, 3]] {
            let got = transpose(&x, &dims, &perm);
            let shape: Vec<usize> = perm.iter().map(|&a| dims[a]).collect();
            let mut i = 0;
            for a in 0..shape[0] {
                for b in 0..shape[1] {
                    for c in 0..shape[2] {
                        for d in 0..shape[3] {
                            let mut src = [0usize; 4];
                            for (k, v) in [a, b, c, d].into_iter().enumerate() {
                                src[perm[k]] = v;
                            }
                            let flat = ((src[0] * 3 + src[1]) * 4 + src[2]) * 5 + src[3];
                            assert_eq!(got[i], x[flat], "perm {perm:?} at {i}");
                            i += 1;
                        }
                    }
                }
            }
        }
    }
}

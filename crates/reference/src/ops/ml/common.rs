//! Helpers shared by the classic ai.onnx.ml kernels: the [N, F] feature view of X, class
//! labels, and the score post-transforms.
//!
//! The ONNX spec leaves the two-class cases of the classifiers loosely defined; where it is
//! silent, these kernels follow onnxruntime (the reference that converters such as skl2onnx
//! are tested against), and each kernel's doc says what that means.

use crate::{OpCtx, OpError, bail};
use kiln_ir::Attr;
use kiln_tensor::{Data, Tensor};

/// X as `rows` rows of `cols` values (f64). A 1-D X is one row; a 0-D or >2-D X is refused.
pub struct Features {
    pub rows: usize,
    pub cols: usize,
    pub v: Vec<f64>,
}

impl Features {
    pub fn of(x: &Tensor, op: &str) -> Result<Features, OpError> {
        if !x.dtype().is_float() && !x.dtype().is_int() {
            bail!("{op} needs a numeric input, got {}", x.dtype());
        }
        let (rows, cols) = match *x.shape() {
            [c] => (1, c),
            [r, c] => (r, c),
            ref s => bail!("{op} input must be [N, F] or [F], got {s:?}"),
        };
        Ok(Features { rows, cols, v: x.to_f64_vec()? })
    }
    pub fn row(&self, r: usize) -> &[f64] {
        &self.v[r * self.cols..(r + 1) * self.cols]
    }
}

/// Class labels: `classlabels_ints` / `classlabels_int64s` or `classlabels_strings`.
pub enum Labels {
    Ints(Vec<i64>),
    Strings(Vec<String>),
}

impl Labels {
    pub fn of(ctx: &OpCtx) -> Labels {
        if let Some(s) = ctx.node.attr("classlabels_strings").and_then(Attr::as_strings) {
            return Labels::Strings(s);
        }
        let ints = ctx.attr_ints("classlabels_ints").or_else(|| ctx.attr_ints("classlabels_int64s"));
        Labels::Ints(ints.map(<[i64]>::to_vec).unwrap_or_default())
    }
    pub fn len(&self) -> usize {
        match self {
            Labels::Ints(v) => v.len(),
            Labels::Strings(v) => v.len(),
        }
    }
    pub fn is_strings(&self) -> bool {
        matches!(self, Labels::Strings(_))
    }
    /// The 1-D label output for the chosen label of each row.
    pub fn output(&self, picks: &[Pick]) -> Result<Tensor, OpError> {
        let n = self.len();
        let check = |i: usize| if i < n { Ok(i) } else { Err(OpError::Invalid(format!("class index {i} is out of range for {n} labels"))) };
        let data = match self {
            Labels::Ints(v) => Data::I64(
                picks.iter().map(|p| match *p { Pick::Class(i) => check(i).map(|i| v[i]), Pick::Raw(b) => Ok(i64::from(b)) }).collect::<Result<_, _>>()?,
            ),
            Labels::Strings(v) => Data::String(
                picks
                    .iter()
                    .map(|p| match *p { Pick::Class(i) => check(i).map(|i| v[i].clone()), Pick::Raw(b) => Ok(u8::from(b).to_string()) })
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(Tensor::new(vec![picks.len()], data)?)
    }
}

/// The label chosen for a row: a class index, or (in onnxruntime's two-class fallbacks) the
/// raw label 1 / 0 (the strings "1" / "0" for string labels).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pick {
    Class(usize),
    Raw(bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Post {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl Post {
    pub fn of(ctx: &OpCtx) -> Result<Post, OpError> {
        Ok(match ctx.attr_s("post_transform", "NONE") {
            "NONE" => Post::None,
            "LOGISTIC" => Post::Logistic,
            "SOFTMAX" => Post::Softmax,
            "SOFTMAX_ZERO" => Post::SoftmaxZero,
            "PROBIT" => Post::Probit,
            other => bail!("attribute 'post_transform' must be NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO or PROBIT, got '{other}'"),
        })
    }

    /// Transforms one row of two or more scores in place.
    pub fn apply(self, s: &mut [f64]) {
        match self {
            Post::None => {}
            Post::Logistic => s.iter_mut().for_each(|v| *v = logistic(*v)),
            Post::Probit => s.iter_mut().for_each(|v| *v = probit(*v)),
            Post::Softmax => softmax(s, false),
            Post::SoftmaxZero => softmax(s, true),
        }
    }
}

pub fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The standard normal quantile, sqrt(2) * erfinv(2p - 1).
pub fn probit(p: f64) -> f64 {
    crate::ops::control::probit(p)
}

/// Softmax over a row; with `skip_zeros` (SOFTMAX_ZERO), scores within 1e-7 of zero take no
/// share and come out (nearly) zero, and a row of zeros is 0 / 0, NaN, as in onnxruntime.
fn softmax(s: &mut [f64], skip_zeros: bool) {
    let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in s.iter_mut() {
        if skip_zeros && v.abs() <= 1e-7 {
            *v *= (-max).exp();
        } else {
            *v = (*v - max).exp();
            sum += *v;
        }
    }
    if sum > 0.0 || skip_zeros {
        s.iter_mut().for_each(|v| *v /= sum);
    }
}

/// How onnxruntime widens a single binary score `s` to two columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondClass {
    /// [1 - s, s] (scores that are probabilities).
    Complement,
    /// [-s, s], or [logistic(-s), logistic(s)] under LOGISTIC (signed margins).
    Negate,
}

/// The two columns of a binary score: PROBIT transforms `s` alone (the second column stays 0);
/// a probability complement under LOGISTIC is [1 - p, p] with p = logistic(s).
pub fn widen_binary(s: f64, post: Post, how: SecondClass) -> [f64; 2] {
    match (post, how) {
        (Post::Probit, _) => [probit(s), 0.0],
        (Post::Logistic, SecondClass::Complement) => [1.0 - logistic(s), logistic(s)],
        (_, SecondClass::Complement) => [1.0 - s, s],
        (Post::Logistic, SecondClass::Negate) => [logistic(-s), logistic(s)],
        (_, SecondClass::Negate) => [-s, s],
    }
}

/// A float attribute list given as `name` (floats) or `name_as_tensor` (a tensor, opset 3).
pub fn floats_attr(ctx: &OpCtx, name: &str) -> Result<Option<Vec<f64>>, OpError> {
    if let Some(t) = ctx.node.attr_tensor(&format!("{name}_as_tensor")) {
        return Ok(Some(t.to_f64_vec()?));
    }
    Ok(ctx.attr_floats(name).map(|v| v.iter().map(|&x| f64::from(x)).collect()))
}

/// A required float list attribute.
pub fn req_floats(ctx: &OpCtx, name: &str) -> Result<Vec<f64>, OpError> {
    floats_attr(ctx, name)?.ok_or_else(|| OpError::Invalid(format!("attribute '{name}' is required")))
}

/// The index of the first largest value (NaNs never win); `None` for an empty slice.
pub fn argmax(v: &[f64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &x) in v.iter().enumerate() {
        if best.is_none_or(|b| x > v[b]) {
            best = Some(i);
        }
    }
    best
}

/// Checks that a [rows, cols] output (sized by attributes a model controls) is within the
/// tensor size limit before anything is allocated.
pub fn out_size(rows: usize, cols: usize) -> Result<usize, OpError> {
    Ok(kiln_tensor::checked_numel(&[rows as i64, cols as i64])?)
}

/// A float [rows, cols] output.
pub fn f32_matrix(rows: usize, cols: usize, v: &[f64]) -> Result<Tensor, OpError> {
    Ok(Tensor::from_vec(vec![rows, cols], v.iter().map(|&x| x as f32).collect::<Vec<f32>>())?)
}

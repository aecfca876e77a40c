//! Resampling: per-axis taps (which input positions each output position reads, with what
//! weight), applied one axis at a time.

use super::coords::{Axis, Rounding, Transform};
use crate::OpError;
use crate::ops::shape::common::{for_each_index, gather_or_fill};
use crate::util::strides;
use kiln_tensor::{Data, Tensor};

/// Where one output position of one axis reads: weighted input positions, or nothing
/// (outside the crop region of tf_crop_and_resize: the extrapolation value).
pub type Taps = Option<Vec<(usize, f64)>>;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Nearest(Rounding),
    Linear,
    Cubic { a: f64, exclude_outside: bool },
}

/// The interpolation settings shared by every axis.
#[derive(Clone, Copy, Debug)]
pub struct Filter {
    pub mode: Mode,
    pub transform: Transform,
    pub antialias: bool,
}

impl Filter {
    /// The taps of every output position of `axis`.
    pub fn taps(&self, axis: &Axis) -> Vec<Taps> {
        (0..axis.output).map(|o| self.taps_at(axis, o)).collect()
    }

    fn taps_at(&self, axis: &Axis, o: usize) -> Taps {
        let x = axis.source(o, self.transform);
        let last = axis.input.saturating_sub(1);
        if self.transform == Transform::TfCropAndResize && (x < 0.0 || x > last as f64) {
            return None;
        }
        let clamp = |i: f64| i.clamp(0.0, last as f64) as usize;
        let (support, s) = match self.mode {
            Mode::Nearest(r) => return Some(vec![(clamp(r.apply(x)), 1.0)]),
            Mode::Linear => (1.0, self.stretch(axis)),
            Mode::Cubic { .. } => (2.0, self.stretch(axis)),
        };
        // Out-of-range taps read the edge, unless excluded. Excluding taps or stretching the
        // kernel (antialiasing) makes the weights sum to other than 1: they are renormalised.
        let exclude = matches!(self.mode, Mode::Cubic { exclude_outside: true, .. });
        let normalise = exclude || s < 1.0;
        let (lo, hi) = ((x - support / s).ceil() as i64, (x + support / s).floor() as i64);
        let mut taps = Vec::with_capacity((hi - lo + 1).max(0) as usize);
        for i in lo..=hi {
            let w = self.kernel((i as f64 - x) * s);
            let inside = (0..axis.input as i64).contains(&i);
            if w != 0.0 && (inside || !exclude) {
                taps.push((clamp(i as f64), w));
            }
        }
        let total: f64 = taps.iter().map(|t| t.1).sum();
        if normalise && total != 0.0 {
            taps.iter_mut().for_each(|t| t.1 /= total);
        }
        Some(taps)
    }

    /// The factor the kernel is stretched by: the scale when antialiasing a downsample.
    fn stretch(&self, axis: &Axis) -> f64 {
        if self.antialias && axis.scale < 1.0 { axis.scale } else { 1.0 }
    }

    fn kernel(&self, d: f64) -> f64 {
        let d = d.abs();
        match self.mode {
            Mode::Nearest(_) => 0.0,
            Mode::Linear => (1.0 - d).max(0.0),
            Mode::Cubic { a, .. } if d <= 1.0 => ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0,
            Mode::Cubic { a, .. } if d < 2.0 => ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a,
            Mode::Cubic { .. } => 0.0,
        }
    }
}

/// Resamples `x` to `shape`, axis `a` through `taps[a]`; positions without taps take
/// `extrapolation`.
pub fn resample(x: &Tensor, shape: Vec<usize>, taps: &[Vec<Taps>], extrapolation: f64) -> Result<Tensor, OpError> {
    let single = taps.iter().flatten().all(|t| t.as_ref().is_none_or(|t| t.len() == 1 && t[0].1 == 1.0));
    if single {
        return pick(x, shape, taps, extrapolation);
    }
    let mut buf = x.to_f64_vec()?;
    let mut cur = x.shape().to_vec();
    for (a, axis_taps) in taps.iter().enumerate() {
        let identity = axis_taps.len() == cur[a] && axis_taps.iter().enumerate().all(|(o, t)| t.as_deref() == Some(&[(o, 1.0)]));
        if identity {
            continue;
        }
        let outer: usize = cur[..a].iter().product();
        let inner: usize = cur[a + 1..].iter().product();
        let dim = cur[a];
        let mut next = Vec::with_capacity(outer * axis_taps.len() * inner);
        for o in 0..outer {
            for t in axis_taps {
                for i in 0..inner {
                    let v = t.iter().flatten().map(|&(k, w)| w * buf[(o * dim + k) * inner + i]).sum();
                    next.push(v);
                }
            }
        }
        buf = next;
        cur[a] = axis_taps.len();
    }
    // Any axis outside the crop region makes the element the extrapolation value.
    if taps.iter().flatten().any(Option::is_none) {
        let mut k = 0;
        for_each_index(&shape, |o| {
            if o.iter().enumerate().any(|(a, &i)| taps[a][i].is_none()) {
                buf[k] = extrapolation;
            }
            k += 1;
        });
    }
    if x.dtype().is_int() {
        // Integer results are truncated toward zero, as onnxruntime casts them.
        buf.iter_mut().for_each(|v| *v = v.trunc());
    }
    Ok(Tensor::new(shape, Data::from_f64_vec(x.dtype(), &buf)?)?)
}

/// Resampling where every position reads one input position: a pure element move, so any
/// dtype works.
fn pick(x: &Tensor, shape: Vec<usize>, taps: &[Vec<Taps>], extrapolation: f64) -> Result<Tensor, OpError> {
    let st = strides(x.shape());
    let mut idx = Vec::with_capacity(shape.iter().product());
    for_each_index(&shape, |o| {
        let mut f = Some(0);
        for (a, &i) in o.iter().enumerate() {
            f = match (f, &taps[a][i]) {
                (Some(f), Some(t)) => Some(f + t[0].0 * st[a]),
                _ => None,
            };
        }
        idx.push(f);
    });
    let fill = if idx.iter().any(Option::is_none) { Data::from_f64_vec(x.dtype(), &[extrapolation])? } else { Data::zeros(x.dtype(), 1) };
    gather_or_fill(x, &fill, shape, &idx)
}

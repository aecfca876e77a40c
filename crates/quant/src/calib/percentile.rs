//! Percentile: the range holding `percentile`% of the values, read from a growing histogram
//! (so the answer is exact to one bin width, `range / 2048`).
//!
//! Symmetric: the histogram is over |x| and the range is `(-t, t)` with `t` the percentile of
//! |x|. Asymmetric: over x, cutting `(100 - percentile) / 2`% from each side (as onnxruntime's
//! percentile calibrator does). Either way the range is clipped to the exact min and max seen.

use super::histogram::Histogram;

/// The range of `hist` (over |x| for the symmetric rule, over x otherwise).
pub fn percentile_range(hist: &Histogram, percentile: f64) -> Option<(f32, f32)> {
    let (min, max) = hist.min_max()?;
    let p = percentile.clamp(0.0, 100.0) / 100.0;
    let (lo, hi) = if hist.is_abs() {
        let t = hist.quantile(p);
        (-t, t)
    } else {
        let cut = (1.0 - p) / 2.0;
        // The lower bound is the lower edge of the bin where the cut-off fraction is reached.
        let lo = hist.quantile_bin(cut).map_or(0.0, |i| hist.edge(i));
        (lo, hist.quantile(1.0 - cut))
    };
    Some((lo.max(min), hi.min(max)))
}

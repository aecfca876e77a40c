//! Entropy (KL divergence), as TensorRT calibrates: a histogram of |x| in 2048 bins; for every
//! candidate threshold bin `i` from `levels` to 2048, the reference distribution P is
//! `hist[..i]` with everything beyond folded into its last bin, and Q is `hist[..i]` quantized
//! to `levels` levels (merged into `levels` groups, each group's count spread evenly over its
//! non-empty bins). The threshold with the smallest KL(P || Q) wins: values past it saturate.
//!
//! Levels: 128 for a symmetric int8 activation or a value that takes negative values, 256 for
//! a non-negative value quantized asymmetrically (u8 spends all its levels on [0, t]).
//! The range `(-t, t)` is clipped to the exact min and max seen, so a ReLU output gets `(0, t)`.

use super::histogram::Histogram;

/// The range of a histogram over |x|: `(-t, t)` clipped to the min and max seen.
pub fn entropy_range(hist: &Histogram, symmetric: bool) -> Option<(f32, f32)> {
    let (min, max) = hist.min_max()?;
    let levels = if symmetric || min < 0.0 { 128 } else { 256 };
    let t = kl_threshold(hist, levels);
    Some(((-t).max(min), t.min(max)))
}

/// The KL-optimal saturation threshold of a histogram over |x| for `levels` levels.
pub fn kl_threshold(h: &Histogram, levels: usize) -> f32 {
    let hist = h.bins();
    let n = hist.len();
    if h.range() == 0.0 || n <= levels {
        return h.range();
    }
    let mut best = (f64::INFINITY, n);
    let mut p = Vec::with_capacity(n);
    let mut q = Vec::with_capacity(n);
    let beyond = suffix_sums(hist);
    for i in levels..=n {
        p.clear();
        p.extend(hist[..i].iter().map(|&c| c as f64));
        p[i - 1] += beyond[i] as f64;
        quantize_expand(&hist[..i], levels, &mut q);
        let kl = kl_divergence(&p, &q);
        if kl < best.0 {
            best = (kl, i);
        }
    }
    h.edge(best.1)
}

/// `out[i] = sum(hist[i..])`, with one extra trailing 0.
fn suffix_sums(hist: &[u64]) -> Vec<u64> {
    let mut out = vec![0u64; hist.len() + 1];
    for i in (0..hist.len()).rev() {
        out[i] = out[i + 1] + hist[i];
    }
    out
}

/// `bins` merged into `levels` groups and expanded back: each non-empty bin of a group gets
/// the group's mean over its non-empty bins; empty bins stay empty.
fn quantize_expand(bins: &[u64], levels: usize, out: &mut Vec<f64>) {
    out.clear();
    out.resize(bins.len(), 0.0);
    let per = bins.len() as f64 / levels as f64;
    for j in 0..levels {
        let start = (j as f64 * per).floor() as usize;
        let end = if j + 1 == levels { bins.len() } else { ((j + 1) as f64 * per).floor() as usize };
        let group = &bins[start..end];
        let nonzero = group.iter().filter(|&&c| c > 0).count();
        if nonzero == 0 {
            continue;
        }
        let mean = group.iter().sum::<u64>() as f64 / nonzero as f64;
        for (k, &c) in group.iter().enumerate() {
            if c > 0 {
                out[start + k] = mean;
            }
        }
    }
}

/// KL(P || Q) of two unnormalised distributions; where Q is 0 but P is not, Q is floored
/// at a tiny probability (the candidate is penalised, not made infinite).
fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
    if sp == 0.0 || sq == 0.0 {
        return f64::INFINITY;
    }
    p.iter()
        .zip(q)
        .filter(|(pi, _)| **pi > 0.0)
        .map(|(pi, qi)| {
            let (pn, qn) = (pi / sp, (qi / sq).max(1e-12));
            pn * (pn / qn).ln()
        })
        .sum()
}

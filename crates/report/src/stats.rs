//! The arithmetic of a validation: percentiles and error metrics over plain numbers.

/// The `p` quantile (0..=1) of sorted values, nearest rank; 0 for none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// (max - min) / median: how much the runs disagree.
pub fn spread(sorted: &[f64]) -> f64 {
    let med = percentile(sorted, 0.5);
    match (sorted.first(), sorted.last()) {
        (Some(lo), Some(hi)) if med > 0.0 => (hi - lo) / med,
        _ => 0.0,
    }
}

/// Error of one output accumulated over samples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErrorStats {
    pub max_abs: f64,
    pub max_rel: f64,
    dot: f64,
    nref: f64,
    ngot: f64,
    pub rows: u64,
    pub top1: u64,
    pub top5: u64,
    /// Whether rows had more than one element (top-k makes sense).
    pub ranked: bool,
}

impl ErrorStats {
    /// Adds one sample: `reference` and `got` of equal length, rows of `row` elements.
    pub fn add(&mut self, reference: &[f64], got: &[f64], row: usize) {
        for (&r, &g) in reference.iter().zip(got) {
            let d = (r - g).abs();
            let d = if d.is_nan() { f64::INFINITY } else { d };
            self.max_abs = self.max_abs.max(d);
            self.max_rel = self.max_rel.max(d / r.abs().max(1e-6));
            self.dot += r * g;
            self.nref += r * r;
            self.ngot += g * g;
        }
        if row > 1 {
            self.ranked = true;
            for (r, g) in reference.chunks(row).zip(got.chunks(row)) {
                let want = argmax(r);
                let mut order: Vec<usize> = (0..g.len()).collect();
                order.sort_by(|&a, &b| g[b].total_cmp(&g[a]).then(a.cmp(&b)));
                self.rows += 1;
                self.top1 += u64::from(order.first() == Some(&want));
                self.top5 += u64::from(order.iter().take(5).any(|&i| i == want));
            }
        }
    }

    /// Cosine similarity over everything added (1 when both are all zeros).
    pub fn cosine(&self) -> f64 {
        if self.nref == 0.0 && self.ngot == 0.0 {
            return 1.0;
        }
        let c = self.dot / (self.nref.sqrt() * self.ngot.sqrt());
        if c.is_nan() { 0.0 } else { c }
    }
}

/// Index of the largest value (first on ties).
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_spread() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert!((spread(&[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn error_metrics() {
        let mut s = ErrorStats::default();
        s.add(&[1.0, 2.0, 3.0, 0.0, 5.0, 1.0], &[1.0, 2.5, 3.0, 0.0, 1.0, 2.0], 3);
        assert_eq!(s.max_abs, 4.0);
        assert_eq!(s.rows, 2);
        assert_eq!(s.top1, 1);
        assert_eq!(s.top5, 2);
        assert!(s.cosine() < 1.0 && s.cosine() > 0.7, "{}", s.cosine());
        let mut same = ErrorStats::default();
        same.add(&[1.0, -2.0], &[1.0, -2.0], 1);
        assert!((same.cosine() - 1.0).abs() < 1e-12 && same.max_rel == 0.0 && !same.ranked);
    }
}

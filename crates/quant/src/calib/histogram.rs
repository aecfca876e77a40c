//! A fixed-size histogram whose range grows by merging bins, so its memory is O(bins) however
//! many samples it sees. Shared by the Percentile and Entropy observers.
//!
//! Two shapes: over `|x|` (`[0, R]`) or over `x` (`[-R, R]`, centred on 0). When a sample
//! exceeds `R`, the range doubles as many times as needed and every 2^k adjacent bins are
//! merged, so counts stay exact at the coarser resolution and 0 stays on a bin edge (|x|) or
//! the middle edge (x).

/// The default bin count (TensorRT's).
pub const DEFAULT_BINS: usize = 2048;

#[derive(Clone, Debug)]
pub struct Histogram {
    /// Over |x| (true) or over x (false).
    abs: bool,
    bins: Vec<u64>,
    /// Half-width of the range (`[-range, range]`), or its width over |x| (`[0, range]`).
    range: f32,
    /// Values seen while the range was still 0 (every value so far was 0).
    pending_zeros: u64,
    min: f32,
    max: f32,
    total: u64,
}

impl Histogram {
    /// `bins` must be even and at least 2 (it is rounded up otherwise).
    pub fn new(bins: usize, abs: bool) -> Histogram {
        let bins = bins.max(2).next_multiple_of(2);
        Histogram { abs, bins: vec![0; bins], range: 0.0, pending_zeros: 0, min: f32::INFINITY, max: f32::NEG_INFINITY, total: 0 }
    }

    pub fn bins(&self) -> &[u64] {
        &self.bins
    }

    pub fn range(&self) -> f32 {
        self.range
    }

    pub fn is_abs(&self) -> bool {
        self.abs
    }

    /// Exact min and max of the finite values seen (None before any).
    pub fn min_max(&self) -> Option<(f32, f32)> {
        (self.total > 0).then_some((self.min, self.max))
    }

    /// Number of finite values counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Width of one bin.
    pub fn bin_width(&self) -> f32 {
        let span = if self.abs { self.range } else { 2.0 * self.range };
        span / self.bins.len() as f32
    }

    /// The lower edge of bin `i` (`i == bins` gives the upper edge of the range).
    pub fn edge(&self, i: usize) -> f32 {
        let start = if self.abs { 0.0 } else { -self.range };
        start + i as f32 * self.bin_width()
    }

    /// Bytes on the heap: constant for a given bin count.
    pub fn heap_bytes(&self) -> usize {
        self.bins.capacity() * std::mem::size_of::<u64>()
    }

    /// Counts the finite values of `xs` (NaN and infinities are skipped).
    pub fn add(&mut self, xs: &[f32]) {
        let peak = xs.iter().filter(|x| x.is_finite()).fold(0.0f32, |m, x| m.max(x.abs()));
        self.grow_to(peak);
        let n = self.bins.len();
        let width = self.bin_width();
        for &x in xs.iter().filter(|x| x.is_finite()) {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
            self.total += 1;
            if self.range == 0.0 {
                self.pending_zeros += 1;
                continue;
            }
            let v = if self.abs { x.abs() } else { x + self.range };
            let i = ((v / width) as usize).min(n - 1);
            self.bins[i] += 1;
        }
    }

    /// Widens the range (doubling, merging bins) until `peak` fits.
    fn grow_to(&mut self, peak: f32) {
        if peak <= self.range || peak == 0.0 {
            return;
        }
        if self.range == 0.0 {
            self.range = peak;
            let zero_bin = if self.abs { 0 } else { self.bins.len() / 2 };
            self.bins[zero_bin] += std::mem::take(&mut self.pending_zeros);
            return;
        }
        let mut factor = 1usize;
        while self.range < peak && factor < self.bins.len() {
            self.range *= 2.0;
            factor *= 2;
        }
        if self.range < peak {
            // More than log2(bins) doublings: everything seen so far lands in the zero bin.
            self.range = peak;
        }
        self.merge(factor);
    }

    /// Merges every `factor` adjacent bins into one, placed so the range stays anchored at 0.
    fn merge(&mut self, factor: usize) {
        let n = self.bins.len();
        let mut merged = vec![0u64; n];
        if self.abs {
            for (i, c) in self.bins.iter().enumerate() {
                merged[i / factor] += c;
            }
        } else {
            // Bin i covers [-R + i w, ..): relative to the centre it is (i - n/2) w; after the
            // range grows by `factor` it lands at n/2 + floor((i - n/2) / factor).
            let half = (n / 2) as i64;
            for (i, c) in self.bins.iter().enumerate() {
                let j = half + (i as i64 - half).div_euclid(factor as i64);
                merged[j.clamp(0, n as i64 - 1) as usize] += c;
            }
        }
        self.bins = merged;
    }

    /// The first bin at which at least `fraction` of the counts lie in it or below it
    /// (None while the range is empty).
    pub fn quantile_bin(&self, fraction: f64) -> Option<usize> {
        if self.range == 0.0 {
            return None;
        }
        let total: u64 = self.bins.iter().sum();
        let want = ((fraction.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, c) in self.bins.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Some(i);
            }
        }
        Some(self.bins.len() - 1)
    }

    /// The upper edge of [`Histogram::quantile_bin`] (0 while the range is empty).
    pub fn quantile(&self, fraction: f64) -> f32 {
        self.quantile_bin(fraction).map_or(0.0, |i| self.edge(i + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_keeps_counts_and_zero_edge() {
        for abs in [true, false] {
            let mut h = Histogram::new(16, abs);
            h.add(&[0.0, 0.0]);
            h.add(&[1.0, -0.5, 0.25]);
            h.add(&[7.9, -3.0]);
            assert_eq!(h.bins().iter().sum::<u64>(), 7);
            assert_eq!(h.total(), 7);
            assert_eq!(h.range(), 8.0);
            assert_eq!(h.min_max(), Some((-3.0, 7.9)));
        }
        let mut h = Histogram::new(16, false);
        h.add(&[1.0, -1.0]);
        h.add(&[4.0]);
        // [-4, 4) in 16 bins of 0.5: -1 -> bin 6; 1.0 was the top edge, counted in the top
        // bin [0.875, 1) of the first range, which merges into [0.5, 1) = bin 9; 4 clamps last.
        assert_eq!(h.bins()[6], 1);
        assert_eq!(h.bins()[9], 1);
        assert_eq!(h.bins()[15], 1);
    }
}

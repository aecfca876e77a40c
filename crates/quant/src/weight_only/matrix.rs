//! A `[K, N]` weight on an integer grid, group-wise along K, and round-to-nearest.

use super::grid::{Grid, Step};

/// Integer values `q [K, N]` (as f32, already on the grid) and one [`Step`] per group of
/// `group` rows and column: `steps [ceil(K / group), N]`. The last group may be partial.
#[derive(Clone, Debug)]
pub(crate) struct QMatrix {
    pub k: usize,
    pub n: usize,
    pub group: usize,
    pub grid: Grid,
    pub q: Vec<f32>,
    pub steps: Vec<Step>,
}

impl QMatrix {
    pub fn new(k: usize, n: usize, group: usize, grid: Grid) -> QMatrix {
        let group = group.max(1);
        QMatrix { k, n, group, grid, q: vec![0.0; k * n], steps: vec![Step { scale: 1.0, zero_point: 0.0 }; k.div_ceil(group) * n] }
    }

    pub fn groups(&self) -> usize {
        self.k.div_ceil(self.group)
    }

    /// Sets the steps of the group starting at row `r0` from `w` (`[K, N]`, current values).
    pub fn set_group_steps(&mut self, r0: usize, w: impl Fn(usize, usize) -> f32) {
        let (gi, r1) = (r0 / self.group, (r0 + self.group).min(self.k));
        for c in 0..self.n {
            self.steps[gi * self.n + c] = self.grid.step((r0..r1).map(|r| w(r, c)));
        }
    }

    /// Quantizes row `r` from its values; returns the dequantized row.
    pub fn set_row(&mut self, r: usize, row: impl Fn(usize) -> f32) -> Vec<f32> {
        let gi = r / self.group;
        (0..self.n)
            .map(|c| {
                let s = self.steps[gi * self.n + c];
                let q = self.grid.quantize(row(c), s);
                self.q[r * self.n + c] = q;
                Grid::dequantize(q, s)
            })
            .collect()
    }

    /// The weight as DequantizeLinear gives it back, `[K, N]`.
    pub fn dequantized(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.k * self.n];
        for r in 0..self.k {
            let gi = r / self.group;
            for c in 0..self.n {
                out[r * self.n + c] = Grid::dequantize(self.q[r * self.n + c], self.steps[gi * self.n + c]);
            }
        }
        out
    }
}

/// Round-to-nearest: every group's steps from its values, each value rounded on its own.
pub(crate) fn rtn(w: &[f32], k: usize, n: usize, group: usize, grid: Grid) -> QMatrix {
    let mut m = QMatrix::new(k, n, group, grid);
    for r0 in (0..k).step_by(m.group) {
        m.set_group_steps(r0, |r, c| w[r * n + c]);
    }
    for r in 0..k {
        m.set_row(r, |c| w[r * n + c]);
    }
    m
}

/// `tr((W - D)^T H (W - D))` for `W, D [K, N]` and a symmetric `H [K, K]`: the proxy of the
/// output error `||X W - X D||^2` GPTQ minimises (H = 2/n X^T X).
pub(crate) fn proxy_error(w: &[f32], d: &[f32], h: &[f64], k: usize, n: usize) -> f64 {
    let diff: Vec<f64> = w.iter().zip(d).map(|(&a, &b)| f64::from(a) - f64::from(b)).collect();
    let mut total = 0.0;
    let mut hd = vec![0.0f64; n];
    for i in 0..k {
        hd.iter_mut().for_each(|v| *v = 0.0);
        for j in 0..k {
            let hij = h[i * k + j];
            if hij != 0.0 {
                let row = &diff[j * n..(j + 1) * n];
                hd.iter_mut().zip(row).for_each(|(acc, &x)| *acc += hij * x);
            }
        }
        total += hd.iter().zip(&diff[i * n..(i + 1) * n]).map(|(a, b)| a * b).sum::<f64>();
    }
    total
}

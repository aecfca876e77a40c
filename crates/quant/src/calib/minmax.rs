//! MinMax: the running minimum and maximum of every finite value seen.

#[derive(Clone, Debug)]
pub struct MinMax {
    min: f32,
    max: f32,
}

impl Default for MinMax {
    fn default() -> Self {
        MinMax { min: f32::INFINITY, max: f32::NEG_INFINITY }
    }
}

impl MinMax {
    pub fn observe(&mut self, xs: &[f32]) {
        for &x in xs.iter().filter(|x| x.is_finite()) {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
    }

    /// `(min, max)`, or None before any finite value.
    pub fn range(&self) -> Option<(f32, f32)> {
        (self.min <= self.max).then_some((self.min, self.max))
    }
}

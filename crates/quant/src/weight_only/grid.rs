//! The integer grid of int4/int8 weights: a group's scale and zero point, quantizing one value
//! onto it and back, bit-exact with the reference QuantizeLinear / DequantizeLinear.
//!
//! Symmetric: `scale = max|w| / 7` (int4) or `/ 127` (int8), zero point 0, values saturate to
//! the type's range. Asymmetric: `[min(w, 0), max(w, 0)]` onto `0..=15` (`0..=255`), the zero
//! point rounded half to even and clamped. Non-finite weights are ignored for the range; an
//! all-zero group gets scale 1 (never 0 or NaN, see [`crate::params::safe_scale`]).

use crate::params::safe_scale;
use kiln_tensor::{DType, Data};

/// An integer weight type: 4 or 8 bits, symmetric (signed, no zero point) or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Grid {
    pub bits: u32,
    pub symmetric: bool,
}

/// One group's parameters (for one column).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Step {
    pub scale: f32,
    pub zero_point: f32,
}

impl Grid {
    pub fn dtype(self) -> DType {
        match (self.bits, self.symmetric) {
            (4, true) => DType::I4,
            (4, false) => DType::U4,
            (_, true) => DType::I8,
            (_, false) => DType::U8,
        }
    }

    /// The saturation range of the type.
    pub fn range(self) -> (f32, f32) {
        match (self.bits, self.symmetric) {
            (4, true) => (-8.0, 7.0),
            (4, false) => (0.0, 15.0),
            (_, true) => (-128.0, 127.0),
            (_, false) => (0.0, 255.0),
        }
    }

    /// The parameters covering `values` (one column of one group).
    pub fn step(self, values: impl Iterator<Item = f32>) -> Step {
        let (mut lo, mut hi) = (0.0f32, 0.0f32);
        for v in values.filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        let (_, qmax) = self.range();
        if self.symmetric {
            let half = if self.bits == 4 { 7.0 } else { 127.0 };
            Step { scale: safe_scale(lo.abs().max(hi) / half), zero_point: 0.0 }
        } else {
            let scale = safe_scale((hi - lo) / qmax);
            Step { scale, zero_point: (-lo / scale).round_ties_even().clamp(0.0, qmax) }
        }
    }

    /// `saturate(round_half_even(w / scale) + zero_point)`, as QuantizeLinear on f32.
    pub fn quantize(self, w: f32, s: Step) -> f32 {
        let (lo, hi) = self.range();
        let q = w / s.scale;
        if q.is_nan() { s.zero_point } else { (q.round_ties_even() + s.zero_point).clamp(lo, hi) }
    }

    /// `(q - zero_point) * scale`, as DequantizeLinear (exact in f32: the difference is a small
    /// integer, so the product rounds once, like the reference's f64 product cast to f32).
    pub fn dequantize(q: f32, s: Step) -> f32 {
        (q - s.zero_point) * s.scale
    }

    /// Integer values (already on the grid) as this type's tensor data.
    pub fn data(self, q: &[f32]) -> Data {
        match self.dtype() {
            DType::I4 => Data::I4(q.iter().map(|&v| v as i8).collect()),
            DType::U4 => Data::U4(q.iter().map(|&v| v as u8).collect()),
            DType::I8 => Data::I8(q.iter().map(|&v| v as i8).collect()),
            _ => Data::U8(q.iter().map(|&v| v as u8).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_asymmetric_steps() {
        let g = Grid { bits: 4, symmetric: true };
        let s = g.step([0.5f32, -1.4, 0.7].into_iter());
        assert_eq!(s, Step { scale: 0.2, zero_point: 0.0 });
        assert_eq!(g.quantize(-1.4, s), -7.0);
        assert_eq!(g.quantize(9.0, s), 7.0);
        let g = Grid { bits: 4, symmetric: false };
        let s = g.step([1.0f32, 2.0, 3.0].into_iter());
        assert_eq!(s, Step { scale: 0.2, zero_point: 0.0 });
        let s = g.step([-1.0f32, 2.0].into_iter());
        assert_eq!(s.zero_point, 5.0);
        assert_eq!(Grid::dequantize(g.quantize(-1.0, s), s), -1.0);
        let s = g.step([0.0f32, f32::NAN].into_iter());
        assert_eq!(s, Step { scale: 1.0, zero_point: 0.0 });
    }
}

//! Quantization parameters: a float range -> (scale, zero point, integer type).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The integer type of a quantized activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QDType {
    /// Unsigned 8-bit, asymmetric: the zero point places 0.0 exactly on an integer.
    U8,
    /// Signed 8-bit, symmetric: zero point 0, range [-127, 127].
    I8,
}

impl QDType {
    pub fn dtype(self) -> kiln_tensor::DType {
        match self {
            QDType::U8 => kiln_tensor::DType::U8,
            QDType::I8 => kiln_tensor::DType::I8,
        }
    }
}

impl fmt::Display for QDType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QDType::U8 => "u8",
            QDType::I8 => "i8",
        })
    }
}

/// Per-tensor parameters of one quantized value: `q = saturate(round(x / scale) + zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct QParams {
    pub scale: f32,
    pub zero_point: i32,
    pub dtype: QDType,
}

/// The scale used when a range is empty (all zeros) or not finite: any positive scale
/// represents 0.0 exactly, and a finite one keeps the graph free of NaN.
pub const FALLBACK_SCALE: f32 = 1.0;
/// The smallest scale written: below it `x / scale` overflows f32 for ordinary activations.
pub const MIN_SCALE: f32 = 1e-12;

/// A scale that is finite and positive whatever the range was.
pub fn safe_scale(scale: f32) -> f32 {
    if !scale.is_finite() || scale <= 0.0 { FALLBACK_SCALE } else { scale.max(MIN_SCALE) }
}

impl QParams {
    /// Parameters covering `[lo, hi]`: asymmetric u8 over the range widened to include 0, or
    /// symmetric i8 over `[-max|.|, max|.|]` (scale = max / 127, zero point 0).
    /// Non-finite bounds are treated as 0; the scale is never 0 or NaN.
    pub fn from_range(lo: f32, hi: f32, dtype: QDType) -> QParams {
        let finite = |v: f32| if v.is_finite() { v } else { 0.0 };
        let (lo, hi) = (finite(lo).min(0.0), finite(hi).max(0.0));
        match dtype {
            QDType::I8 => {
                let scale = safe_scale(lo.abs().max(hi.abs()) / 127.0);
                QParams { scale, zero_point: 0, dtype }
            }
            QDType::U8 => {
                let scale = safe_scale((hi - lo) / 255.0);
                let zero_point = (-lo / scale).round_ties_even().clamp(0.0, 255.0) as i32;
                QParams { scale, zero_point, dtype }
            }
        }
    }

    /// The float range these parameters represent exactly.
    pub fn representable(&self) -> (f32, f32) {
        let (qmin, qmax) = match self.dtype {
            QDType::U8 => (0, 255),
            QDType::I8 => (-127, 127),
        };
        ((qmin - self.zero_point) as f32 * self.scale, (qmax - self.zero_point) as f32 * self.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asymmetric_includes_zero_and_symmetric_has_zero_point_zero() {
        let p = QParams::from_range(1.0, 3.0, QDType::U8);
        assert_eq!(p.zero_point, 0);
        assert!((p.scale - 3.0 / 255.0).abs() < 1e-9);
        let p = QParams::from_range(-1.0, 3.0, QDType::U8);
        assert_eq!(p.zero_point, 64);
        let p = QParams::from_range(-2.0, 1.0, QDType::I8);
        assert_eq!(p.zero_point, 0);
        assert!((p.scale - 2.0 / 127.0).abs() < 1e-9);
    }

    #[test]
    fn scale_is_never_zero_or_nan() {
        for (lo, hi) in [(0.0, 0.0), (f32::NAN, f32::NAN), (f32::NEG_INFINITY, f32::INFINITY), (0.0, 1e-30)] {
            for dt in [QDType::U8, QDType::I8] {
                let p = QParams::from_range(lo, hi, dt);
                assert!(p.scale.is_finite() && p.scale > 0.0, "{lo} {hi} {dt} -> {p:?}");
            }
        }
    }
}

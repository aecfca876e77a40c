//! Resize coordinate transforms (output position to input position) and nearest rounding.

use crate::{OpError, bail};

/// How an output coordinate maps back to an input coordinate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transform {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
    TfCropAndResize,
}

impl Transform {
    pub fn parse(s: &str) -> Result<Transform, OpError> {
        Ok(match s {
            "half_pixel" => Transform::HalfPixel,
            "half_pixel_symmetric" => Transform::HalfPixelSymmetric,
            "pytorch_half_pixel" => Transform::PytorchHalfPixel,
            "align_corners" => Transform::AlignCorners,
            "asymmetric" => Transform::Asymmetric,
            "tf_half_pixel_for_nn" => Transform::TfHalfPixelForNn,
            "tf_crop_and_resize" => Transform::TfCropAndResize,
            m => bail!("attribute 'coordinate_transformation_mode' has an unknown value '{m}'"),
        })
    }
}

/// One axis of a resize: its input and output lengths, the scale used by the transform,
/// and its region of interest (normalised start/end; used by tf_crop_and_resize only).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Axis {
    pub input: usize,
    pub output: usize,
    pub scale: f64,
    pub roi: (f64, f64),
}

impl Axis {
    /// The input coordinate that output position `x` reads. As in onnxruntime, the arithmetic
    /// is f32, so that `nearest` rounding of coordinates that land on an integer in f32
    /// (3 / 0.6f32 is exactly 5 there, 4.9999998 in f64) picks the same pixel.
    ///
    /// The resized length in align_corners and half_pixel_symmetric is `scale * input`,
    /// unrounded, as the spec and its test cases have it (onnxruntime and PyTorch use the
    /// rounded output length instead, which differs when `scale * input` is fractional).
    /// tf_crop_and_resize's output covers only the region of interest.
    pub fn source(&self, x: usize, t: Transform) -> f64 {
        let (x, scale) = (x as f32, self.scale as f32);
        let exact = self.scale * self.input as f64;
        let resized = if (exact - self.output as f64).abs() < 1e-9 { self.output as f32 } else { exact as f32 };
        let (len_in, len_out) = (self.input as f32, self.output as f32);
        let v = match t {
            Transform::HalfPixel => (x + 0.5) / scale - 0.5,
            Transform::HalfPixelSymmetric => {
                let adjustment = len_out / resized;
                let offset = len_in / 2.0 * (1.0 - adjustment);
                offset + (x + 0.5) / scale - 0.5
            }
            Transform::PytorchHalfPixel if self.output > 1 => (x + 0.5) / scale - 0.5,
            Transform::PytorchHalfPixel => 0.0,
            Transform::AlignCorners if self.output > 1 => x * (len_in - 1.0) / (resized - 1.0),
            Transform::AlignCorners => 0.0,
            Transform::Asymmetric => x / scale,
            Transform::TfHalfPixelForNn => (x + 0.5) / scale,
            Transform::TfCropAndResize => {
                let (start, end) = (self.roi.0 as f32, self.roi.1 as f32);
                if self.output > 1 {
                    start * (len_in - 1.0) + x * (end - start) * (len_in - 1.0) / (len_out - 1.0)
                } else {
                    0.5 * (start + end) * (len_in - 1.0)
                }
            }
        };
        f64::from(v)
    }
}

/// How mode "nearest" rounds an input coordinate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rounding {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

impl Rounding {
    pub fn parse(s: &str) -> Result<Rounding, OpError> {
        Ok(match s {
            "round_prefer_floor" => Rounding::RoundPreferFloor,
            "round_prefer_ceil" => Rounding::RoundPreferCeil,
            "floor" => Rounding::Floor,
            "ceil" => Rounding::Ceil,
            m => bail!("attribute 'nearest_mode' has an unknown value '{m}'"),
        })
    }

    pub fn apply(self, x: f64) -> f64 {
        match self {
            Rounding::RoundPreferFloor if x.fract().abs() == 0.5 => x.floor(),
            Rounding::RoundPreferCeil if x.fract().abs() == 0.5 => x.ceil(),
            Rounding::RoundPreferFloor | Rounding::RoundPreferCeil => x.round(),
            Rounding::Floor => x.floor(),
            Rounding::Ceil => x.ceil(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms() {
        let a = Axis { input: 4, output: 8, scale: 2.0, roi: (0.0, 1.0) };
        assert_eq!(a.source(0, Transform::HalfPixel), -0.25);
        assert_eq!(a.source(2, Transform::Asymmetric), 1.0);
        assert_eq!(a.source(7, Transform::AlignCorners), 3.0);
        assert_eq!(a.source(0, Transform::TfHalfPixelForNn), 0.25);
        // f32 arithmetic: 3 / 0.6f32 is exactly 5 in f32 (4.9999998 in f64), as onnxruntime
        // computes it.
        let b = Axis { input: 7, output: 4, scale: f64::from(0.6f32), roi: (0.0, 1.0) };
        assert_eq!(b.source(3, Transform::Asymmetric), 5.0);
        // align_corners divides by scale * input - 1 (3.2), per the spec.
        assert!((b.source(3, Transform::AlignCorners) - 3.0 * 6.0 / 3.2).abs() < 1e-5);
    }

    #[test]
    fn rounding() {
        assert_eq!(Rounding::RoundPreferFloor.apply(1.5), 1.0);
        assert_eq!(Rounding::RoundPreferCeil.apply(1.5), 2.0);
        assert_eq!(Rounding::RoundPreferFloor.apply(-0.5), -1.0);
        assert_eq!(Rounding::RoundPreferFloor.apply(1.6), 2.0);
    }
}

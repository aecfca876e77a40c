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
    /// The input coordinate that output position `x` reads. The resized length in the
    /// formulas is `scale * input`, unrounded (it equals the output length given sizes),
    /// except for tf_crop_and_resize, whose output covers only the region of interest.
    pub fn source(&self, x: usize, t: Transform) -> f64 {
        let (x, scale) = (x as f64, self.scale);
        let len_in = self.input as f64;
        let len_out = scale * len_in;
        match t {
            Transform::HalfPixel => (x + 0.5) / scale - 0.5,
            Transform::HalfPixelSymmetric => {
                let adjustment = self.output as f64 / len_out;
                let offset = len_in / 2.0 * (1.0 - adjustment);
                offset + (x + 0.5) / scale - 0.5
            }
            Transform::PytorchHalfPixel if self.output > 1 => (x + 0.5) / scale - 0.5,
            Transform::PytorchHalfPixel => 0.0,
            Transform::AlignCorners if self.output > 1 => x * (len_in - 1.0) / (len_out - 1.0),
            Transform::AlignCorners => 0.0,
            Transform::Asymmetric => x / scale,
            Transform::TfHalfPixelForNn => (x + 0.5) / scale,
            Transform::TfCropAndResize => {
                let (start, end) = self.roi;
                if self.output > 1 {
                    start * (len_in - 1.0) + x * (end - start) * (len_in - 1.0) / (self.output as f64 - 1.0)
                } else {
                    0.5 * (start + end) * (len_in - 1.0)
                }
            }
        }
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
    }

    #[test]
    fn rounding() {
        assert_eq!(Rounding::RoundPreferFloor.apply(1.5), 1.0);
        assert_eq!(Rounding::RoundPreferCeil.apply(1.5), 2.0);
        assert_eq!(Rounding::RoundPreferFloor.apply(-0.5), -1.0);
        assert_eq!(Rounding::RoundPreferFloor.apply(1.6), 2.0);
    }
}

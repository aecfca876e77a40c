use crate::{DType, Data};
use half::{bf16, f16};

/// A Rust type that is the in-memory element of one [`DType`].
///
/// Conversions through `f64` are how the reference executor computes float ops plainly;
/// integer ops use the native type.
pub trait Elem: Copy + PartialOrd + Default + Send + Sync + std::fmt::Debug + 'static {
    const DTYPE: DType;
    fn wrap(v: Vec<Self>) -> Data;
    fn slice(d: &Data) -> Option<&[Self]>;
    fn slice_mut(d: &mut Data) -> Option<&mut [Self]>;
    fn unwrap(d: Data) -> Result<Vec<Self>, Data>;
    fn to_f64(self) -> f64;
    /// Converts with ONNX Cast semantics: floats round to nearest even, integers truncate and wrap.
    fn from_f64(v: f64) -> Self;
    fn to_i64(self) -> i64;
    fn from_i64(v: i64) -> Self;
}

macro_rules! int_elem {
    ($t:ty, $variant:ident) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$variant;
            fn wrap(v: Vec<Self>) -> Data {
                Data::$variant(v)
            }
            fn slice(d: &Data) -> Option<&[Self]> {
                if let Data::$variant(v) = d { Some(v) } else { None }
            }
            fn slice_mut(d: &mut Data) -> Option<&mut [Self]> {
                if let Data::$variant(v) = d { Some(v) } else { None }
            }
            fn unwrap(d: Data) -> Result<Vec<Self>, Data> {
                if let Data::$variant(v) = d { Ok(v) } else { Err(d) }
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                // ONNX leaves out-of-range float->int undefined; truncate through i128 and wrap.
                if v.is_nan() { 0 } else { (v.trunc() as i128) as $t }
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn from_i64(v: i64) -> Self {
                v as $t
            }
        }
    };
}

int_elem!(i64, I64);
int_elem!(i32, I32);
int_elem!(i16, I16);
int_elem!(i8, I8);
int_elem!(u8, U8);
int_elem!(u16, U16);
int_elem!(u32, U32);
int_elem!(u64, U64);

macro_rules! float_elem {
    ($t:ty, $variant:ident, $to:expr, $from:expr) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$variant;
            fn wrap(v: Vec<Self>) -> Data {
                Data::$variant(v)
            }
            fn slice(d: &Data) -> Option<&[Self]> {
                if let Data::$variant(v) = d { Some(v) } else { None }
            }
            fn slice_mut(d: &mut Data) -> Option<&mut [Self]> {
                if let Data::$variant(v) = d { Some(v) } else { None }
            }
            fn unwrap(d: Data) -> Result<Vec<Self>, Data> {
                if let Data::$variant(v) = d { Ok(v) } else { Err(d) }
            }
            fn to_f64(self) -> f64 {
                $to(self)
            }
            fn from_f64(v: f64) -> Self {
                $from(v)
            }
            fn to_i64(self) -> i64 {
                let f = $to(self);
                if f.is_nan() { 0 } else { f as i64 }
            }
            fn from_i64(v: i64) -> Self {
                $from(v as f64)
            }
        }
    };
}

float_elem!(f32, F32, |x: f32| x as f64, |v: f64| v as f32);
float_elem!(f64, F64, |x: f64| x, |v: f64| v);
float_elem!(f16, F16, |x: f16| x.to_f64(), |v: f64| f16::from_f32(f32_round_to_odd(v)));
float_elem!(bf16, BF16, |x: bf16| x.to_f64(), |v: f64| bf16::from_f32(f32_round_to_odd(v)));

/// `v` as f32 rounded to odd (toward zero, then the lowest mantissa bit set when inexact), so
/// a second rounding to nearest-even into a type of at least two fewer mantissa bits (f16,
/// bf16) is correctly rounded. `half`'s own f64 conversions read only the upper 32 bits of the
/// f64 and lose the sticky bits below them, which misrounds ties of f32 values.
fn f32_round_to_odd(v: f64) -> f32 {
    let f = v as f32;
    if !f.is_finite() || f64::from(f) == v {
        return f;
    }
    // `f` is the nearest f32; step back toward zero when it rounded away, then mark inexact.
    let toward_zero = if f64::from(f).abs() > v.abs() { f32::from_bits(f.to_bits() - 1) } else { f };
    f32::from_bits(toward_zero.to_bits() | 1)
}

impl Elem for bool {
    const DTYPE: DType = DType::Bool;
    fn wrap(v: Vec<Self>) -> Data {
        Data::Bool(v)
    }
    fn slice(d: &Data) -> Option<&[Self]> {
        if let Data::Bool(v) = d { Some(v) } else { None }
    }
    fn slice_mut(d: &mut Data) -> Option<&mut [Self]> {
        if let Data::Bool(v) = d { Some(v) } else { None }
    }
    fn unwrap(d: Data) -> Result<Vec<Self>, Data> {
        if let Data::Bool(v) = d { Ok(v) } else { Err(d) }
    }
    fn to_f64(self) -> f64 {
        if self { 1.0 } else { 0.0 }
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn from_i64(v: i64) -> Self {
        v != 0
    }
}

#[cfg(test)]
mod tests {
    use super::Elem;
    use half::{bf16, f16};

    /// f16 / bf16 from f64 are correctly rounded: a value just above a tie rounds up (the bits
    /// that decide it sit below the upper 32 bits of the f64), exact ties go to even.
    #[test]
    fn half_precision_conversions_round_to_nearest_even() {
        let above_tie = f64::from(f32::from_bits(0x3f80_8001));
        assert_eq!(<bf16 as Elem>::from_f64(above_tie).to_bits(), 0x3f81);
        assert_eq!(<bf16 as Elem>::from_f64(f64::from(f32::from_bits(0x3f80_8000))).to_bits(), 0x3f80);
        assert_eq!(<bf16 as Elem>::from_f64(f64::from(f32::from_bits(0x3f81_8000))).to_bits(), 0x3f82);
        // f16: 1 + 2^-11 is a tie (to 1.0); a hair above it rounds up, also from an f64.
        assert_eq!(<f16 as Elem>::from_f64(1.0 + 2f64.powi(-11)).to_bits(), 0x3c00);
        assert_eq!(<f16 as Elem>::from_f64(1.0 + 2f64.powi(-11) + 2f64.powi(-40)).to_bits(), 0x3c01);
        assert_eq!(<bf16 as Elem>::from_f64(1.0 + 2f64.powi(-8) + 2f64.powi(-45)).to_bits(), 0x3f81);
        assert!(<bf16 as Elem>::from_f64(f64::NAN).is_nan());
        assert_eq!(<bf16 as Elem>::from_f64(1e39).to_bits(), 0x7f80);
        assert_eq!(<f16 as Elem>::from_f64(-0.0).to_bits(), 0x8000);
        for i in 0..100_000u32 {
            let x = f32::from_bits(i.wrapping_mul(2_654_435_761) & 0xbfff_ffff);
            assert_eq!(<bf16 as Elem>::from_f64(f64::from(x)), bf16::from_f32(x), "{x:e}");
            assert_eq!(<f16 as Elem>::from_f64(f64::from(x)).to_bits(), f16::from_f32(x).to_bits(), "{x:e}");
        }
    }
}

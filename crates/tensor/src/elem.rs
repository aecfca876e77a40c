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
float_elem!(f16, F16, |x: f16| x.to_f64(), f16::from_f64);
float_elem!(bf16, BF16, |x: bf16| x.to_f64(), bf16::from_f64);

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

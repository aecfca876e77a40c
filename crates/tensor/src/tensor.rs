use crate::{DType, Elem, TensorError};
use half::{bf16, f16};

/// Largest element count Kiln will allocate for one tensor (2^34, 64 GiB of f32):
/// shapes beyond it are refused before any allocation.
pub const MAX_ELEMENTS: usize = 1 << 34;

/// Typed element storage. 4-bit types hold one value per byte in memory
/// (`I4` in -8..=7, `U4` in 0..=15) and are packed two per byte in raw form.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    I16(Vec<i16>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
    I4(Vec<i8>),
    U4(Vec<u8>),
    String(Vec<String>),
}

/// Runs `$body` with `$v` bound to the typed vector of any [`Data`] variant whose element
/// implements [`Elem`] (every variant but the 4-bit ones and strings); `$other` otherwise.
#[macro_export]
macro_rules! with_elem {
    ($data:expr, $v:ident => $body:expr, $other:ident => $fallback:expr) => {
        match $data {
            $crate::Data::F32($v) => $body,
            $crate::Data::F64($v) => $body,
            $crate::Data::F16($v) => $body,
            $crate::Data::BF16($v) => $body,
            $crate::Data::I64($v) => $body,
            $crate::Data::I32($v) => $body,
            $crate::Data::I16($v) => $body,
            $crate::Data::I8($v) => $body,
            $crate::Data::U8($v) => $body,
            $crate::Data::U16($v) => $body,
            $crate::Data::U32($v) => $body,
            $crate::Data::U64($v) => $body,
            $crate::Data::Bool($v) => $body,
            $other => $fallback,
        }
    };
}

impl Data {
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::F16(_) => DType::F16,
            Data::BF16(_) => DType::BF16,
            Data::I64(_) => DType::I64,
            Data::I32(_) => DType::I32,
            Data::I16(_) => DType::I16,
            Data::I8(_) => DType::I8,
            Data::U8(_) => DType::U8,
            Data::U16(_) => DType::U16,
            Data::U32(_) => DType::U32,
            Data::U64(_) => DType::U64,
            Data::Bool(_) => DType::Bool,
            Data::I4(_) => DType::I4,
            Data::U4(_) => DType::U4,
            Data::String(_) => DType::String,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Data::I4(v) => v.len(),
            Data::U4(v) => v.len(),
            Data::String(v) => v.len(),
            other => with_elem!(other, v => v.len(), _o => 0),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `n` zero (or empty-string) elements of `dtype`.
    pub fn zeros(dtype: DType, n: usize) -> Data {
        match dtype {
            DType::F32 => Data::F32(vec![0.0; n]),
            DType::F64 => Data::F64(vec![0.0; n]),
            DType::F16 => Data::F16(vec![f16::ZERO; n]),
            DType::BF16 => Data::BF16(vec![bf16::ZERO; n]),
            DType::I64 => Data::I64(vec![0; n]),
            DType::I32 => Data::I32(vec![0; n]),
            DType::I16 => Data::I16(vec![0; n]),
            DType::I8 => Data::I8(vec![0; n]),
            DType::U8 => Data::U8(vec![0; n]),
            DType::U16 => Data::U16(vec![0; n]),
            DType::U32 => Data::U32(vec![0; n]),
            DType::U64 => Data::U64(vec![0; n]),
            DType::Bool => Data::Bool(vec![false; n]),
            DType::I4 => Data::I4(vec![0; n]),
            DType::U4 => Data::U4(vec![0; n]),
            DType::String => Data::String(vec![String::new(); n]),
        }
    }

    /// Elements as f64 (bools as 0/1); None for strings.
    pub fn to_f64_vec(&self) -> Option<Vec<f64>> {
        match self {
            Data::I4(v) => Some(v.iter().map(|&x| x as f64).collect()),
            Data::U4(v) => Some(v.iter().map(|&x| x as f64).collect()),
            Data::String(_) => None,
            other => with_elem!(other, v => Some(v.iter().map(|x| x.to_f64()).collect()), _o => None),
        }
    }

    /// Elements as i64 (floats truncated); None for strings.
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        match self {
            Data::I4(v) => Some(v.iter().map(|&x| x as i64).collect()),
            Data::U4(v) => Some(v.iter().map(|&x| x as i64).collect()),
            Data::String(_) => None,
            other => with_elem!(other, v => Some(v.iter().map(|x| x.to_i64()).collect()), _o => None),
        }
    }

    /// Builds `dtype` data from f64 values with Cast semantics (4-bit types saturate).
    pub fn from_f64_vec(dtype: DType, v: &[f64]) -> Result<Data, TensorError> {
        fn conv<T: Elem>(v: &[f64]) -> Data {
            T::wrap(v.iter().map(|&x| T::from_f64(x)).collect())
        }
        Ok(match dtype {
            DType::F32 => conv::<f32>(v),
            DType::F64 => conv::<f64>(v),
            DType::F16 => conv::<f16>(v),
            DType::BF16 => conv::<bf16>(v),
            DType::I64 => conv::<i64>(v),
            DType::I32 => conv::<i32>(v),
            DType::I16 => conv::<i16>(v),
            DType::I8 => conv::<i8>(v),
            DType::U8 => conv::<u8>(v),
            DType::U16 => conv::<u16>(v),
            DType::U32 => conv::<u32>(v),
            DType::U64 => conv::<u64>(v),
            DType::Bool => conv::<bool>(v),
            DType::I4 => Data::I4(v.iter().map(|&x| x.round_ties_even().clamp(-8.0, 7.0) as i8).collect()),
            DType::U4 => Data::U4(v.iter().map(|&x| x.round_ties_even().clamp(0.0, 15.0) as u8).collect()),
            DType::String => return Err(TensorError::BadCast { from: DType::F64, to: DType::String }),
        })
    }
}

/// A dense tensor with a concrete shape, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Data,
}

/// Element count of `dims`, refusing negative dims and counts beyond [`MAX_ELEMENTS`].
pub fn checked_numel(dims: &[i64]) -> Result<usize, TensorError> {
    let mut n: usize = 1;
    for &d in dims {
        if d < 0 {
            return Err(TensorError::NegativeDim { dim: d, shape: dims.to_vec() });
        }
        n = n.checked_mul(d as usize).filter(|&n| n <= MAX_ELEMENTS).ok_or_else(|| {
            TensorError::TooLarge { shape: dims.to_vec(), what: "element count overflows".into(), limit: MAX_ELEMENTS }
        })?;
    }
    Ok(n)
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Data) -> Result<Tensor, TensorError> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(TensorError::LengthMismatch { shape, expected, actual: data.len() });
        }
        Ok(Tensor { shape, data })
    }

    pub fn from_vec<T: Elem>(shape: Vec<usize>, v: Vec<T>) -> Result<Tensor, TensorError> {
        Tensor::new(shape, T::wrap(v))
    }

    pub fn scalar<T: Elem>(v: T) -> Tensor {
        Tensor { shape: vec![], data: T::wrap(vec![v]) }
    }

    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Tensor {
        let n = shape.iter().product();
        Tensor { shape, data: Data::zeros(dtype, n) }
    }

    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn data(&self) -> &Data {
        &self.data
    }
    pub fn data_mut(&mut self) -> &mut Data {
        &mut self.data
    }
    pub fn into_data(self) -> Data {
        self.data
    }
    pub fn into_parts(self) -> (Vec<usize>, Data) {
        (self.shape, self.data)
    }

    /// Same data, new shape of equal element count.
    pub fn reshape(self, shape: Vec<usize>) -> Result<Tensor, TensorError> {
        Tensor::new(shape, self.data)
    }

    pub fn as_slice<T: Elem>(&self) -> Result<&[T], TensorError> {
        T::slice(&self.data).ok_or(TensorError::WrongDType { expected: T::DTYPE, actual: self.dtype() })
    }

    pub fn into_vec<T: Elem>(self) -> Result<Vec<T>, TensorError> {
        let actual = self.dtype();
        T::unwrap(self.data).map_err(|_| TensorError::WrongDType { expected: T::DTYPE, actual })
    }

    pub fn to_f64_vec(&self) -> Result<Vec<f64>, TensorError> {
        self.data.to_f64_vec().ok_or(TensorError::BadCast { from: self.dtype(), to: DType::F64 })
    }

    pub fn to_i64_vec(&self) -> Result<Vec<i64>, TensorError> {
        self.data.to_i64_vec().ok_or(TensorError::BadCast { from: self.dtype(), to: DType::I64 })
    }

    /// ONNX `Cast` semantics between numeric types and to/from strings.
    pub fn cast(&self, to: DType) -> Result<Tensor, TensorError> {
        if to == self.dtype() {
            return Ok(self.clone());
        }
        let data = match (&self.data, to) {
            (Data::String(v), _) => {
                let parsed: Vec<f64> = v
                    .iter()
                    .map(|s| parse_float(s).ok_or(TensorError::BadCast { from: DType::String, to }))
                    .collect::<Result<_, _>>()?;
                Data::from_f64_vec(to, &parsed)?
            }
            (Data::U64(v), DType::String) => Data::String(v.iter().map(u64::to_string).collect()),
            (d, DType::String) if d.dtype().is_int() || d.dtype() == DType::Bool => {
                // Through i64, exactly (an f64 would round integers past 2^53).
                let v = self.to_i64_vec().map_err(|_| TensorError::BadCast { from: d.dtype(), to })?;
                Data::String(v.iter().map(i64::to_string).collect())
            }
            (d, DType::String) => {
                let v = d.to_f64_vec().ok_or(TensorError::BadCast { from: d.dtype(), to })?;
                let wide = d.dtype() == DType::F64;
                Data::String(v.iter().map(|&x| format_for_string_cast(x, wide)).collect())
            }
            (Data::I64(v), DType::U64) => Data::U64(v.iter().map(|&x| x as u64).collect()),
            (Data::U64(v), DType::I64) => Data::I64(v.iter().map(|&x| x as i64).collect()),
            (d, to) if d.dtype().is_int() && to.is_int() => {
                // Integer to integer: exact through i128 with wrapping, no f64 round trip.
                let v = d.to_i64_vec().ok_or(TensorError::BadCast { from: d.dtype(), to })?;
                int_to_int(&v, to)
            }
            (d, to) => {
                let v = d.to_f64_vec().ok_or(TensorError::BadCast { from: d.dtype(), to })?;
                Data::from_f64_vec(to, &v)?
            }
        };
        Ok(Tensor { shape: self.shape.clone(), data })
    }

    /// Parses little-endian raw bytes (ONNX `raw_data`, npy payloads, safetensors).
    pub fn from_raw_bytes(dtype: DType, shape: Vec<usize>, raw: &[u8]) -> Result<Tensor, TensorError> {
        let count: usize = shape.iter().product();
        let expected = dtype.storage_bytes(count);
        if dtype == DType::String || raw.len() != expected {
            return Err(TensorError::RawLength { dtype, count, expected, actual: raw.len() });
        }
        macro_rules! le {
            ($t:ty, $n:expr) => {
                raw.chunks_exact($n).map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or([0; $n]))).collect()
            };
        }
        let data = match dtype {
            DType::F32 => Data::F32(le!(f32, 4)),
            DType::F64 => Data::F64(le!(f64, 8)),
            DType::F16 => Data::F16(raw.chunks_exact(2).map(|c| f16::from_bits(u16::from_le_bytes([c[0], c[1]]))).collect()),
            DType::BF16 => Data::BF16(raw.chunks_exact(2).map(|c| bf16::from_bits(u16::from_le_bytes([c[0], c[1]]))).collect()),
            DType::I64 => Data::I64(le!(i64, 8)),
            DType::I32 => Data::I32(le!(i32, 4)),
            DType::I16 => Data::I16(le!(i16, 2)),
            DType::I8 => Data::I8(raw.iter().map(|&b| b as i8).collect()),
            DType::U8 => Data::U8(raw.to_vec()),
            DType::U16 => Data::U16(le!(u16, 2)),
            DType::U32 => Data::U32(le!(u32, 4)),
            DType::U64 => Data::U64(le!(u64, 8)),
            DType::Bool => Data::Bool(raw.iter().map(|&b| b != 0).collect()),
            DType::I4 => Data::I4(unpack4(raw, count).map(|n| ((n << 4) as i8) >> 4).collect()),
            DType::U4 => Data::U4(unpack4(raw, count).collect()),
            DType::String => unreachable_string(),
        };
        Ok(Tensor { shape, data })
    }

    /// Little-endian raw bytes; 4-bit types packed low nibble first. None for strings.
    pub fn to_raw_bytes(&self) -> Option<Vec<u8>> {
        Some(match &self.data {
            Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::F16(v) => v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
            Data::BF16(v) => v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
            Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I8(v) => v.iter().map(|&x| x as u8).collect(),
            Data::U8(v) => v.clone(),
            Data::U16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::U64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Bool(v) => v.iter().map(|&x| x as u8).collect(),
            Data::I4(v) => pack4(v.iter().map(|&x| x as u8)),
            Data::U4(v) => pack4(v.iter().copied()),
            Data::String(_) => return None,
        })
    }
}

fn unreachable_string() -> Data {
    Data::String(Vec::new())
}

fn unpack4(raw: &[u8], count: usize) -> impl Iterator<Item = u8> + '_ {
    (0..count).map(move |i| {
        let b = raw[i / 2];
        if i % 2 == 0 { b & 0x0f } else { b >> 4 }
    })
}

fn pack4(v: impl Iterator<Item = u8>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, x) in v.enumerate() {
        if i % 2 == 0 {
            out.push(x & 0x0f);
        } else if let Some(last) = out.last_mut() {
            *last |= (x & 0x0f) << 4;
        }
    }
    out
}

fn int_to_int(v: &[i64], to: DType) -> Data {
    match to {
        DType::I64 => Data::I64(v.to_vec()),
        DType::I32 => Data::I32(v.iter().map(|&x| x as i32).collect()),
        DType::I16 => Data::I16(v.iter().map(|&x| x as i16).collect()),
        DType::I8 => Data::I8(v.iter().map(|&x| x as i8).collect()),
        DType::U8 => Data::U8(v.iter().map(|&x| x as u8).collect()),
        DType::U16 => Data::U16(v.iter().map(|&x| x as u16).collect()),
        DType::U32 => Data::U32(v.iter().map(|&x| x as u32).collect()),
        DType::U64 => Data::U64(v.iter().map(|&x| x as u64).collect()),
        DType::I4 => Data::I4(v.iter().map(|&x| x.clamp(-8, 7) as i8).collect()),
        DType::U4 => Data::U4(v.iter().map(|&x| x.clamp(0, 15) as u8).collect()),
        _ => Data::Bool(v.iter().map(|&x| x != 0).collect()),
    }
}

fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => t.parse::<f64>().ok(),
    }
}

/// A float as Cast writes it: the shortest digits that read back to the same value (of f32,
/// or of f64 for `wide`), positional unless the exponent is below -4 or at least the type's
/// `%g` precision (8 for f32, 16 for f64), then scientific with a signed two-digit exponent:
/// "0.1", "3", "1234567", "1.2345679e+08", "1e-05", "NaN", "-INF".
fn format_for_string_cast(x: f64, wide: bool) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "INF".into() } else { "-INF".into() };
    }
    let sci = if wide { format!("{x:e}") } else { format!("{:e}", x as f32) };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= if wide { 16 } else { 8 } {
        format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else if wide {
        format!("{x}")
    } else {
        format!("{}", x as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_and_ints_cast_to_strings() {
        let f = Tensor::from_vec(vec![8], vec![0.1f32, 3.0, 1234567.0, 123456789.0, 1e20, 1e-5, 0.00012345678, -2.5]).unwrap();
        let s = f.cast(DType::String).unwrap();
        let want = ["0.1", "3", "1234567", "1.2345679e+08", "1e+20", "1e-05", "0.00012345678", "-2.5"];
        assert_eq!(s.data(), &Data::String(want.iter().map(|w| w.to_string()).collect()));
        let d = Tensor::from_vec(vec![2], vec![0.123456789012345f64, 1e-8]).unwrap();
        assert_eq!(d.cast(DType::String).unwrap().data(), &Data::String(vec!["0.123456789012345".into(), "1e-08".into()]));
        // Integers past 2^53 stay exact.
        let i = Tensor::from_vec(vec![2], vec![9007199254740993i64, -5]).unwrap();
        assert_eq!(i.cast(DType::String).unwrap().data(), &Data::String(vec!["9007199254740993".into(), "-5".into()]));
        let u = Tensor::from_vec(vec![1], vec![u64::MAX]).unwrap();
        assert_eq!(u.cast(DType::String).unwrap().data(), &Data::String(vec![u64::MAX.to_string()]));
    }

    #[test]
    fn raw_round_trip_all_numeric() {
        for d in DType::ALL {
            if d == DType::String {
                continue;
            }
            let t = Tensor::new(vec![3], Data::from_f64_vec(d, &[1.0, 0.0, 5.0]).unwrap()).unwrap();
            let raw = t.to_raw_bytes().unwrap();
            assert_eq!(raw.len(), d.storage_bytes(3));
            assert_eq!(Tensor::from_raw_bytes(d, vec![3], &raw).unwrap(), t, "{d}");
        }
    }

    #[test]
    fn i4_sign_extends() {
        let t = Tensor::from_raw_bytes(DType::I4, vec![2], &[0xF9]).unwrap();
        assert_eq!(t.data(), &Data::I4(vec![-7, -1]));
    }

    #[test]
    fn absurd_dims_refused() {
        assert!(matches!(checked_numel(&[1 << 40, 1 << 40]), Err(TensorError::TooLarge { .. })));
        assert!(matches!(checked_numel(&[2, -1]), Err(TensorError::NegativeDim { .. })));
    }

    #[test]
    fn wrong_raw_length() {
        assert!(Tensor::from_raw_bytes(DType::F32, vec![2], &[0; 7]).is_err());
    }
}

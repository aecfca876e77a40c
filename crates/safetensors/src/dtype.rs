//! The safetensors element types and how each maps onto Kiln's.

use kiln_tensor::DType;

/// A safetensors dtype as the header spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StDType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U64,
    U32,
    U16,
    U8,
    Bool,
    /// 8-bit float, 4 exponent bits, 3 mantissa bits, no infinities (OCP "E4M3FN").
    F8E4M3,
    /// 8-bit float, 5 exponent bits, 2 mantissa bits (OCP "E5M2", IEEE-like).
    F8E5M2,
    /// 8-bit power-of-two scale (MX formats).
    F8E8M0,
    /// 4-bit float (E2M1), two per byte.
    F4,
    F6E2M3,
    F6E3M2,
    /// Complex, two f32.
    C64,
}

impl StDType {
    pub const ALL: [StDType; 20] = [
        StDType::F64,
        StDType::F32,
        StDType::F16,
        StDType::BF16,
        StDType::I64,
        StDType::I32,
        StDType::I16,
        StDType::I8,
        StDType::U64,
        StDType::U32,
        StDType::U16,
        StDType::U8,
        StDType::Bool,
        StDType::F8E4M3,
        StDType::F8E5M2,
        StDType::F8E8M0,
        StDType::F4,
        StDType::F6E2M3,
        StDType::F6E3M2,
        StDType::C64,
    ];

    /// The header's spelling.
    pub fn name(self) -> &'static str {
        match self {
            StDType::F64 => "F64",
            StDType::F32 => "F32",
            StDType::F16 => "F16",
            StDType::BF16 => "BF16",
            StDType::I64 => "I64",
            StDType::I32 => "I32",
            StDType::I16 => "I16",
            StDType::I8 => "I8",
            StDType::U64 => "U64",
            StDType::U32 => "U32",
            StDType::U16 => "U16",
            StDType::U8 => "U8",
            StDType::Bool => "BOOL",
            StDType::F8E4M3 => "F8_E4M3",
            StDType::F8E5M2 => "F8_E5M2",
            StDType::F8E8M0 => "F8_E8M0",
            StDType::F4 => "F4",
            StDType::F6E2M3 => "F6_E2M3",
            StDType::F6E3M2 => "F6_E3M2",
            StDType::C64 => "C64",
        }
    }

    pub fn from_name(s: &str) -> Option<StDType> {
        StDType::ALL.into_iter().find(|d| d.name() == s)
    }

    /// Bits per element (the sub-byte types are packed).
    pub fn bits(self) -> u64 {
        match self {
            StDType::F64 | StDType::I64 | StDType::U64 | StDType::C64 => 64,
            StDType::F32 | StDType::I32 | StDType::U32 => 32,
            StDType::F16 | StDType::BF16 | StDType::I16 | StDType::U16 => 16,
            StDType::I8 | StDType::U8 | StDType::Bool | StDType::F8E4M3 | StDType::F8E5M2 | StDType::F8E8M0 => 8,
            StDType::F6E2M3 | StDType::F6E3M2 => 6,
            StDType::F4 => 4,
        }
    }

    /// Bytes taken by `count` elements, or None when the count is not a whole number of bytes
    /// (sub-byte types) or overflows.
    pub fn bytes_for(self, count: u64) -> Option<u64> {
        let bits = count.checked_mul(self.bits())?;
        (bits % 8 == 0).then_some(bits / 8)
    }

    /// The Kiln element type with the same bytes, when there is one.
    pub fn to_kiln(self) -> Option<DType> {
        Some(match self {
            StDType::F64 => DType::F64,
            StDType::F32 => DType::F32,
            StDType::F16 => DType::F16,
            StDType::BF16 => DType::BF16,
            StDType::I64 => DType::I64,
            StDType::I32 => DType::I32,
            StDType::I16 => DType::I16,
            StDType::I8 => DType::I8,
            StDType::U64 => DType::U64,
            StDType::U32 => DType::U32,
            StDType::U16 => DType::U16,
            StDType::U8 => DType::U8,
            StDType::Bool => DType::Bool,
            _ => return None,
        })
    }

    /// The safetensors dtype of a Kiln element type (4-bit integers and strings have none).
    pub fn from_kiln(d: DType) -> Option<StDType> {
        StDType::ALL.into_iter().find(|s| s.to_kiln() == Some(d))
    }

    /// Every header spelling, for messages.
    pub fn known_names() -> String {
        StDType::ALL.iter().map(|d| d.name()).collect::<Vec<_>>().join(", ")
    }
}

impl std::fmt::Display for StDType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Decodes an F8_E4M3 (FN: no infinities, 0x7f/0xff are NaN) byte.
pub fn f8_e4m3_to_f32(b: u8) -> f32 {
    let sign = if b & 0x80 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((b >> 3) & 0x0f);
    let man = f32::from(b & 0x07);
    if exp == 0x0f && b & 0x07 == 0x07 {
        return f32::NAN;
    }
    if exp == 0 { sign * man / 8.0 * 2f32.powi(-6) } else { sign * (1.0 + man / 8.0) * 2f32.powi(exp - 7) }
}

/// Decodes an F8_E5M2 byte (IEEE-like: exponent 31 holds infinities and NaNs).
pub fn f8_e5m2_to_f32(b: u8) -> f32 {
    // E5M2 is the top byte of an IEEE half.
    kiln_tensor::f16::from_bits(u16::from(b) << 8).to_f32()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in StDType::ALL {
            assert_eq!(StDType::from_name(d.name()), Some(d));
        }
        assert_eq!(StDType::from_name("f32"), None, "the header spelling is upper case");
    }

    #[test]
    fn f8_values() {
        assert_eq!(f8_e4m3_to_f32(0x38), 1.0);
        assert_eq!(f8_e4m3_to_f32(0x7e), 448.0);
        assert_eq!(f8_e4m3_to_f32(0xb8), -1.0);
        assert_eq!(f8_e4m3_to_f32(0x01), 2f32.powi(-9));
        assert!(f8_e4m3_to_f32(0x7f).is_nan());
        assert_eq!(f8_e5m2_to_f32(0x3c), 1.0);
        assert_eq!(f8_e5m2_to_f32(0x7b), 57344.0);
        assert!(f8_e5m2_to_f32(0x7c).is_infinite());
        assert!(f8_e5m2_to_f32(0x7d).is_nan());
    }
}

use std::fmt;

/// Element type of a tensor. The discriminants are not ONNX's; use [`DType::from_onnx`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    U16,
    U32,
    U64,
    Bool,
    /// Signed 4-bit integers, packed two per byte (low nibble first).
    I4,
    /// Unsigned 4-bit integers, packed two per byte (low nibble first).
    U4,
    /// UTF-8 strings (ONNX `STRING`); kept for string-valued graphs and attributes.
    String,
}

impl DType {
    pub const ALL: [DType; 16] = [
        DType::F32,
        DType::F64,
        DType::F16,
        DType::BF16,
        DType::I64,
        DType::I32,
        DType::I16,
        DType::I8,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::Bool,
        DType::I4,
        DType::U4,
        DType::String,
    ];

    /// Short lowercase name used in dumps and reports.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::I16 => "i16",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::Bool => "bool",
            DType::I4 => "i4",
            DType::U4 => "u4",
            DType::String => "string",
        }
    }

    pub fn from_name(s: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == s)
    }

    /// Size of one element in bits (strings report 0: they have no fixed size).
    pub fn bits(self) -> usize {
        match self {
            DType::F64 | DType::I64 | DType::U64 => 64,
            DType::F32 | DType::I32 | DType::U32 => 32,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 16,
            DType::I8 | DType::U8 | DType::Bool => 8,
            DType::I4 | DType::U4 => 4,
            DType::String => 0,
        }
    }

    /// Bytes needed to store `n` elements (packed types round up).
    pub fn storage_bytes(self, n: usize) -> usize {
        (n * self.bits()).div_ceil(8)
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    pub fn is_int(self) -> bool {
        matches!(
            self,
            DType::I64
                | DType::I32
                | DType::I16
                | DType::I8
                | DType::U8
                | DType::U16
                | DType::U32
                | DType::U64
                | DType::I4
                | DType::U4
        )
    }

    pub fn is_signed(self) -> bool {
        matches!(self, DType::I64 | DType::I32 | DType::I16 | DType::I8 | DType::I4) || self.is_float()
    }

    /// The ONNX `TensorProto.DataType` code, or None for types ONNX does not define.
    pub fn to_onnx(self) -> i32 {
        match self {
            DType::F32 => 1,
            DType::U8 => 2,
            DType::I8 => 3,
            DType::U16 => 4,
            DType::I16 => 5,
            DType::I32 => 6,
            DType::I64 => 7,
            DType::String => 8,
            DType::Bool => 9,
            DType::F16 => 10,
            DType::F64 => 11,
            DType::U32 => 12,
            DType::U64 => 13,
            DType::BF16 => 16,
            DType::U4 => 21,
            DType::I4 => 22,
        }
    }

    /// Maps an ONNX `TensorProto.DataType` code; complex and float8 types give None.
    pub fn from_onnx(code: i32) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.to_onnx() == code)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onnx_codes_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_onnx(d.to_onnx()), Some(d));
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
        assert_eq!(DType::from_onnx(17), None, "float8 is not a Kiln dtype");
    }

    #[test]
    fn packed_sizes() {
        assert_eq!(DType::I4.storage_bytes(3), 2);
        assert_eq!(DType::F16.storage_bytes(3), 6);
    }
}

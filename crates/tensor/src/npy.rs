//! Reading and writing NumPy `.npy` files (format versions 1-3, little-endian, C order).

use crate::{DType, Tensor, TensorError, checked_numel};

fn err(m: impl Into<String>) -> TensorError {
    TensorError::Npy(m.into())
}

fn descr(d: DType) -> Option<&'static str> {
    Some(match d {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::F16 => "<f2",
        DType::I64 => "<i8",
        DType::I32 => "<i4",
        DType::I16 => "<i2",
        DType::I8 => "|i1",
        DType::U8 => "|u1",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::U64 => "<u8",
        DType::Bool => "|b1",
        _ => return None,
    })
}

/// Parses a whole `.npy` file.
pub fn read(bytes: &[u8]) -> Result<Tensor, TensorError> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(err("not an .npy file (bad magic)"));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(err(format!("unsupported .npy version {v}"))),
    };
    let header = bytes.get(start..start + hlen).ok_or_else(|| err("header runs past the end of the file"))?;
    let header = std::str::from_utf8(header).map_err(|_| err("header is not text"))?;
    let field = |key: &str| -> Result<&str, TensorError> {
        let at = header.find(&format!("'{key}'")).ok_or_else(|| err(format!("header lacks '{key}'")))?;
        let rest = &header[at + key.len() + 2..];
        let colon = rest.find(':').ok_or_else(|| err("malformed header"))?;
        Ok(rest[colon + 1..].trim_start())
    };
    let d = field("descr")?;
    let d = d.strip_prefix('\'').and_then(|s| s.split('\'').next()).ok_or_else(|| err("malformed descr"))?;
    let dtype = match d {
        "<f4" => DType::F32,
        "<f8" => DType::F64,
        "<f2" => DType::F16,
        "<i8" => DType::I64,
        "<i4" => DType::I32,
        "<i2" => DType::I16,
        "|i1" | "<i1" => DType::I8,
        "|u1" | "<u1" => DType::U8,
        "<u2" => DType::U16,
        "<u4" => DType::U32,
        "<u8" => DType::U64,
        "|b1" => DType::Bool,
        other => return Err(err(format!("unsupported dtype '{other}' (big-endian, object and string arrays are not read)"))),
    };
    if field("fortran_order")?.starts_with("True") {
        return Err(err("Fortran-order arrays are not supported; save with np.ascontiguousarray"));
    }
    let s = field("shape")?;
    let s = s.strip_prefix('(').and_then(|s| s.split(')').next()).ok_or_else(|| err("malformed shape"))?;
    let dims: Vec<i64> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<i64>().map_err(|_| err(format!("bad dimension '{p}'"))))
        .collect::<Result<_, _>>()?;
    checked_numel(&dims)?;
    let shape: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    Tensor::from_raw_bytes(dtype, shape, &bytes[start + hlen..])
}

/// Serialises a tensor as a version-1 `.npy` file. bf16, 4-bit and string tensors have no
/// npy dtype and are refused.
pub fn write(t: &Tensor) -> Result<Vec<u8>, TensorError> {
    let d = descr(t.dtype()).ok_or_else(|| err(format!("{} has no .npy dtype; cast it first", t.dtype())))?;
    let shape = match t.shape() {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        s => format!("({})", s.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{d}', 'fortran_order': False, 'shape': {shape}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(t.to_raw_bytes().ok_or_else(|| err("string tensors cannot be written"))?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = Tensor::from_vec(vec![2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let bytes = write(&t).unwrap();
        assert_eq!((bytes.len() - 128) % 4, 0);
        assert_eq!(read(&bytes).unwrap(), t);
        let s = Tensor::scalar(7i64);
        assert_eq!(read(&write(&s).unwrap()).unwrap(), s);
    }

    #[test]
    fn truncated_payload_is_an_error() {
        let t = Tensor::from_vec(vec![4], vec![1i32, 2, 3, 4]).unwrap();
        let bytes = write(&t).unwrap();
        assert!(read(&bytes[..bytes.len() - 1]).is_err());
        assert!(read(b"garbage").is_err());
    }
}

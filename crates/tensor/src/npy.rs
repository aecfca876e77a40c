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
        other if other.starts_with("<U") || other.starts_with("|S") || other.starts_with("|U") => DType::String,
        other => return Err(err(format!("unsupported dtype '{other}' (big-endian and object arrays are not read)"))),
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
    if dtype == DType::String {
        let strings = read_strings(d, shape.iter().product(), &bytes[start + hlen..])?;
        return Tensor::new(shape, crate::Data::String(strings));
    }
    Tensor::from_raw_bytes(dtype, shape, &bytes[start + hlen..])
}

/// Fixed-width NumPy strings: `<U{n}` (n UTF-32LE code points, zero-padded) or `|S{n}`
/// (n bytes, zero-padded, read as UTF-8).
fn read_strings(descr: &str, count: usize, payload: &[u8]) -> Result<Vec<String>, TensorError> {
    let unicode = descr.ends_with(|c: char| c.is_ascii_digit()) && descr.contains('U');
    let width: usize = descr[2..].parse().map_err(|_| err(format!("bad string dtype '{descr}'")))?;
    let item = if unicode { width.checked_mul(4) } else { Some(width) }.ok_or_else(|| err("string width overflows"))?;
    let need = item.checked_mul(count).ok_or_else(|| err("string array size overflows"))?;
    if payload.len() < need {
        return Err(err(format!("payload has {} bytes, {count} strings of {item} bytes need {need}", payload.len())));
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let raw = &payload[i * item..(i + 1) * item];
        if unicode {
            let mut s = String::with_capacity(width);
            for c in raw.chunks_exact(4) {
                let code = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                if code == 0 {
                    break;
                }
                s.push(char::from_u32(code).ok_or_else(|| err(format!("string {i} holds an invalid code point {code:#x}")))?);
            }
            out.push(s);
        } else {
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            out.push(String::from_utf8(raw[..end].to_vec()).map_err(|_| err(format!("string {i} is not UTF-8")))?);
        }
    }
    Ok(out)
}

/// Serialises a tensor as a version-1 `.npy` file; strings as fixed-width `<U{n}` (n the
/// longest string's length in code points). bf16 and 4-bit tensors have no npy dtype and are
/// refused.
pub fn write(t: &Tensor) -> Result<Vec<u8>, TensorError> {
    let strings = if let crate::Data::String(v) = t.data() { Some(v) } else { None };
    let width = strings.map_or(0, |v| v.iter().map(|s| s.chars().count()).max().unwrap_or(0).max(1));
    let unicode = format!("<U{width}");
    let d = match strings {
        Some(_) => unicode.as_str(),
        None => descr(t.dtype()).ok_or_else(|| err(format!("{} has no .npy dtype; cast it first", t.dtype())))?,
    };
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
    match strings {
        Some(v) => {
            for s in v {
                let n = s.chars().count();
                s.chars().for_each(|c| out.extend((c as u32).to_le_bytes()));
                out.resize(out.len() + 4 * (width - n), 0);
            }
        }
        None => out.extend(t.to_raw_bytes().ok_or_else(|| err("this tensor has no raw form"))?),
    }
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
    fn strings_round_trip_as_fixed_width_unicode() {
        let t = Tensor::new(vec![2, 2], crate::Data::String(vec!["small".into(), "".into(), "größer".into(), "x".into()])).unwrap();
        let bytes = write(&t).unwrap();
        assert!(std::str::from_utf8(&bytes[10..60]).unwrap().contains("'<U6'"));
        assert_eq!(read(&bytes).unwrap(), t);
        assert!(read(&bytes[..bytes.len() - 1]).is_err());
    }

    /// Bytes written by `np.save(f, np.array([["ab", "c"]]))` and `np.array([b"hi", b"x"])`.
    #[test]
    fn reads_numpy_string_arrays() {
        let mut u = b"\x93NUMPY\x01\x00".to_vec();
        let h = "{'descr': '<U2', 'fortran_order': False, 'shape': (1, 2), }";
        let h = format!("{h}{}\n", " ".repeat(117 - h.len()));
        u.extend((h.len() as u16).to_le_bytes());
        u.extend(h.as_bytes());
        for c in ['a', 'b', 'c', '\0'] {
            u.extend((c as u32).to_le_bytes());
        }
        let t = read(&u).unwrap();
        assert_eq!((t.shape(), t.data()), (&[1usize, 2][..], &crate::Data::String(vec!["ab".into(), "c".into()])));
        let mut s = b"\x93NUMPY\x01\x00".to_vec();
        let h = "{'descr': '|S2', 'fortran_order': False, 'shape': (2,), }";
        let h = format!("{h}{}\n", " ".repeat(117 - h.len()));
        s.extend((h.len() as u16).to_le_bytes());
        s.extend(h.as_bytes());
        s.extend(b"hix\0");
        assert_eq!(read(&s).unwrap().data(), &crate::Data::String(vec!["hi".into(), "x".into()]));
    }

    #[test]
    fn truncated_payload_is_an_error() {
        let t = Tensor::from_vec(vec![4], vec![1i32, 2, 3, 4]).unwrap();
        let bytes = write(&t).unwrap();
        assert!(read(&bytes[..bytes.len() - 1]).is_err());
        assert!(read(b"garbage").is_err());
    }
}

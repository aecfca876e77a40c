//! A framing check over the top level of a protobuf message.
//!
//! rust-protobuf treats the end of the buffer inside a nested message as the end of that
//! message, so a truncated file can decode "successfully" into a smaller model. Every field of
//! a valid message ends inside the buffer; a truncated file has a last field that does not.

fn varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Checks that every top-level field of `bytes` is complete. Err says where it stops.
pub fn check_framing(bytes: &[u8]) -> Result<(), String> {
    let mut pos = 0usize;
    while pos < bytes.len() {
        let start = pos;
        let tag = varint(bytes, &mut pos).ok_or_else(|| format!("the file ends inside a field tag at byte {start}"))?;
        let field = tag >> 3;
        let need = match tag & 7 {
            0 => {
                varint(bytes, &mut pos).ok_or_else(|| format!("the file ends inside field {field} at byte {start}"))?;
                0
            }
            1 => 8,
            5 => 4,
            2 => varint(bytes, &mut pos).ok_or_else(|| format!("the file ends inside the length of field {field}"))?,
            w => return Err(format!("byte {start}: wire type {w} of field {field} is not valid protobuf")),
        };
        let remaining = (bytes.len() - pos) as u64;
        if need > remaining {
            return Err(format!(
                "the file is truncated: field {field} at byte {start} declares {need} bytes but only {remaining} remain"
            ));
        }
        pos += need as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_framing;

    #[test]
    fn finds_truncation() {
        // field 7, length 5, then only 3 bytes.
        assert!(check_framing(&[0x3a, 0x05, 1, 2, 3]).unwrap_err().contains("truncated"));
        assert!(check_framing(&[0x3a, 0x03, 1, 2, 3, 0x08, 0x08]).is_ok());
        assert!(check_framing(&[0x08]).is_err());
        assert!(check_framing(&[0x0f]).is_err(), "wire type 7 is invalid");
    }
}

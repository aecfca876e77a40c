//! A framing check of the protobuf wire format, run before decoding.
//!
//! rust-protobuf reads a nested message until its length or the end of the input, whichever
//! comes first, so a file cut at a field boundary inside the graph decodes as a smaller, valid
//! looking model. Every truncation cuts the last top-level field, though, and a top-level
//! length-delimited field that runs past the end of the input is caught here.

/// Checks that the top-level fields of a serialized message end exactly at the end of `bytes`.
/// Err says which field runs past the end.
pub(crate) fn check_framing(bytes: &[u8]) -> Result<(), String> {
    let mut pos = 0usize;
    while pos < bytes.len() {
        let start = pos;
        let tag = varint(bytes, &mut pos).ok_or_else(|| format!("the file ends inside a field tag at byte {start}"))?;
        let field = tag >> 3;
        let need = match tag & 7 {
            0 => {
                varint(bytes, &mut pos).ok_or_else(|| format!("the file ends inside field {field} (byte {start})"))?;
                0
            }
            1 => 8,
            2 => varint(bytes, &mut pos).ok_or_else(|| format!("the file ends inside the length of field {field} (byte {start})"))?,
            5 => 4,
            // Groups (3, 4) and invalid wire types: the decoder reports those.
            _ => return Ok(()),
        };
        let end = usize::try_from(need).ok().and_then(|n| pos.checked_add(n));
        match end {
            Some(end) if end <= bytes.len() => pos = end,
            _ => {
                return Err(format!(
                    "field {field} at byte {start} needs {need} bytes but the file ends after {} (truncated?)",
                    bytes.len() - pos
                ));
            }
        }
    }
    Ok(())
}

/// Reads a base-128 varint at `*pos`; None when the input ends first or it is over 10 bytes.
fn varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..70).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_cut_messages() {
        // field 1 varint 150, field 2 bytes "abc", field 5 fixed32.
        let msg = [0x08, 0x96, 0x01, 0x12, 0x03, b'a', b'b', b'c', 0x2d, 1, 2, 3, 4];
        assert_eq!(check_framing(&msg), Ok(()));
        assert_eq!(check_framing(&[]), Ok(()));
        for cut in [1, 2, 4, 5, 6, 7, 9, 12] {
            assert!(check_framing(&msg[..cut]).is_err(), "cut at {cut} must be caught");
        }
        // Cuts at a field boundary are whole messages.
        for cut in [3, 8] {
            assert_eq!(check_framing(&msg[..cut]), Ok(()));
        }
        let err = check_framing(&msg[..6]).expect_err("cut inside field 2");
        assert!(err.contains("field 2") && err.contains("truncated"), "{err}");
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let msg = [0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(check_framing(&msg).is_err());
        let too_long = [0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert!(check_framing(&too_long).is_err());
    }
}

//! The one `unsafe` of the crate: mapping a file into memory.

use std::fs::File;

/// The bytes of a checkpoint: a read-only mapping of the file, or bytes in memory.
pub enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// Maps `file` read-only.
///
/// SAFETY: the file is opened read-only by the caller and the mapping is private to this
/// process, so Kiln never writes through it. What no mapping can prevent: another process that
/// truncates or rewrites the file while it is mapped. Truncation makes reads past the new end
/// fault (SIGBUS) and a rewrite changes the bytes under the parsed header; the header's bounds
/// were checked at open time only. Do not modify a checkpoint while Kiln reads it.
#[allow(unsafe_code)]
pub fn map_file(file: &File) -> std::io::Result<Bytes> {
    let map = unsafe { memmap2::MmapOptions::new().map(file)? };
    Ok(Bytes::Mapped(map))
}

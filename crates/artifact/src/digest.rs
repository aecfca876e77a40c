use crate::error::{ArtifactError, io};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The digest of a source model: the sha256 of the file, or for a folder (a Hugging Face
/// model) the sha256 of the sorted lines `<sha256>  <relative path>` of its files (like
/// `sha256sum`), so it does not depend on where the folder is.
pub fn source_digest(path: &Path) -> Result<String, ArtifactError> {
    if path.is_file() {
        return Ok(sha256_hex(&std::fs::read(path).map_err(|e| io(path, e))?));
    }
    let mut lines = Vec::new();
    for rel in list_files(path)? {
        let p = path.join(&rel);
        let d = sha256_hex(&std::fs::read(&p).map_err(|e| io(&p, e))?);
        lines.push(format!("{d}  {rel}\n"));
    }
    lines.sort();
    Ok(sha256_hex(lines.concat().as_bytes()))
}

/// Every regular file under `dir`, as sorted `/`-separated relative paths. Symlinks are listed
/// as files (their target's bytes are what a reader gets).
pub(crate) fn list_files(dir: &Path) -> Result<Vec<String>, ArtifactError> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| io(&d, e))? {
            let entry = entry.map_err(|e| io(&d, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            if entry.path().is_dir() {
                stack.push((entry.path(), rel));
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    Ok(out)
}

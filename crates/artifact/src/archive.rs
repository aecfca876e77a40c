//! The single-file form: a deterministic tar of `artifact/` and `artifact.attestations/`.

use crate::digest::list_files;
use crate::error::{ArtifactError, invalid, io};
use crate::write::{attestations_dir, write_atomic};
use std::path::{Path, PathBuf};

/// Packs an artifact folder (and its attestations, when present) into `out`: sorted entries,
/// mtime 0, uid/gid 0, mode 0644, so the same folders give the same bytes.
pub fn pack(artifact: &Path, out: &Path) -> Result<(), ArtifactError> {
    let mut b = tar::Builder::new(Vec::new());
    let att = attestations_dir(artifact);
    for (root, prefix) in [(artifact.to_path_buf(), "artifact"), (att, "artifact.attestations")] {
        if !root.is_dir() {
            continue;
        }
        for rel in list_files(&root)? {
            let p = root.join(&rel);
            let bytes = std::fs::read(&p).map_err(|e| io(&p, e))?;
            let mut h = tar::Header::new_ustar();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, format!("{prefix}/{rel}"), bytes.as_slice()).map_err(|e| io(out, e))?;
        }
    }
    let bytes = b.into_inner().map_err(|e| io(out, e))?;
    write_atomic(out, &bytes)
}

/// Unpacks an archive written by [`pack`] into `dest`; returns the artifact folder
/// (`dest/artifact`, its attestations at `dest/artifact.attestations`).
pub fn unpack(archive: &Path, dest: &Path) -> Result<PathBuf, ArtifactError> {
    std::fs::create_dir_all(dest).map_err(|e| io(dest, e))?;
    let f = std::fs::File::open(archive).map_err(|e| io(archive, e))?;
    let mut a = tar::Archive::new(f);
    for entry in a.entries().map_err(|e| io(archive, e))? {
        let mut entry = entry.map_err(|e| io(archive, e))?;
        let path = entry.path().map_err(|e| io(archive, e))?.into_owned();
        let top = path.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
        if top != "artifact" && top != "artifact.attestations" {
            return Err(invalid(archive, format!("entry {} is outside artifact/ and artifact.attestations/", path.display())));
        }
        if !entry.unpack_in(dest).map_err(|e| io(archive, e))? {
            return Err(invalid(archive, format!("entry {} would be written outside the folder", path.display())));
        }
    }
    let dir = dest.join("artifact");
    if !dir.is_dir() {
        return Err(invalid(archive, "no artifact/ folder inside: not a Kiln artifact archive"));
    }
    Ok(dir)
}

use crate::attest::Envelope;
use crate::digest::sha256_hex;
use crate::error::{ArtifactError, invalid, io};
use crate::manifest::{FileEntry, MANIFEST_FILE, MANIFEST_SCHEMA_VERSION, Manifest, is_semver};
use std::path::{Path, PathBuf};

/// What [`write_artifact`] wrote.
#[derive(Clone, Debug)]
pub struct ArtifactOutput {
    pub dir: PathBuf,
    /// `sha256:<hex>` of `manifest.json`.
    pub digest: String,
    pub manifest: Manifest,
}

/// `<ARTIFACT>.attestations`: where evidence about an artifact lives, beside it.
pub fn attestations_dir(artifact: &Path) -> PathBuf {
    let name = artifact.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "artifact".into());
    artifact.with_file_name(format!("{name}.attestations"))
}

fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Writes `bytes` to `path` through a temporary sibling renamed over it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ArtifactError> {
    let parent = parent_of(path);
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let r = std::fs::write(&tmp, bytes).map_err(|e| io(&tmp, e)).and_then(|()| std::fs::rename(&tmp, path).map_err(|e| io(path, e)));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Writes an artifact folder: `files` (relative `/`-separated paths, any order) and a manifest
/// listing each with its size and sha256, sorted. `manifest.files` is filled here. Everything
/// goes into a temporary sibling that is renamed over `dir` only when complete; an existing
/// `dir` is replaced only if it is a Kiln artifact or plan folder, and its stale
/// `.attestations` folder (evidence about the old artifact) goes with it.
pub fn write_artifact(dir: &Path, mut manifest: Manifest, files: &[(String, Vec<u8>)]) -> Result<ArtifactOutput, ArtifactError> {
    if !is_semver(&manifest.version) {
        return Err(invalid(dir, format!("version '{}' is not a semantic version (MAJOR.MINOR.PATCH)", manifest.version)));
    }
    manifest.schema_version = MANIFEST_SCHEMA_VERSION;
    let mut entries = Vec::new();
    for (path, bytes) in files {
        if path == MANIFEST_FILE || path.is_empty() || path.starts_with('/') || path.split('/').any(|c| c == ".." || c == "." || c.is_empty()) {
            return Err(invalid(dir, format!("'{path}' is not a valid artifact file path")));
        }
        entries.push(FileEntry { path: path.clone(), bytes: bytes.len() as u64, sha256: sha256_hex(bytes) });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    if entries.windows(2).any(|w| w[0].path == w[1].path) {
        return Err(invalid(dir, "two files with the same path"));
    }
    manifest.files = entries;
    let manifest_bytes = manifest.to_bytes();
    let digest = format!("sha256:{}", sha256_hex(&manifest_bytes));

    let parent = parent_of(dir);
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "artifact".into());
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = (|| {
        std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        for (path, bytes) in files {
            let p = tmp.join(path);
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
            }
            std::fs::write(&p, bytes).map_err(|e| io(&p, e))?;
        }
        // The manifest last: a folder with a manifest is complete.
        std::fs::write(tmp.join(MANIFEST_FILE), &manifest_bytes).map_err(|e| io(&tmp.join(MANIFEST_FILE), e))?;
        if dir.exists() {
            let is_ours = dir.join(MANIFEST_FILE).exists() || dir.join("plan.json").exists();
            let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
            if !is_ours && !empty {
                return Err(ArtifactError::NotAnArtifact(dir.display().to_string()));
            }
            std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        let att = attestations_dir(dir);
        if att.exists() {
            std::fs::remove_dir_all(&att).map_err(|e| io(&att, e))?;
        }
        std::fs::rename(&tmp, dir).map_err(|e| io(dir, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result?;
    Ok(ArtifactOutput { dir: dir.to_path_buf(), digest, manifest })
}

/// Writes `<ARTIFACT>.attestations/<name>` (an envelope) atomically.
pub fn write_attestation(artifact: &Path, name: &str, envelope: &Envelope) -> Result<PathBuf, ArtifactError> {
    let path = attestations_dir(artifact).join(name);
    let mut bytes = serde_json::to_vec_pretty(envelope).map_err(|e| invalid(&path, e.to_string()))?;
    bytes.push(b'\n');
    write_atomic(&path, &bytes)?;
    Ok(path)
}

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The manifest's file name inside an artifact. Its sha256 is the artifact's digest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Bumped on any change a reader must know about; readers refuse newer manifests.
pub const MANIFEST_SCHEMA_VERSION: u32 = 1;

/// What an artifact is. Field order is the serialization order; maps are sorted; no field
/// holds a time, an absolute path or a measured number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub name: String,
    /// Semantic version of this artifact (`MAJOR.MINOR.PATCH`).
    pub version: String,
    /// The target the plan was built for: kind, device description, fingerprint.
    pub target: BTreeMap<String, String>,
    /// "f32" today; a quantized build names its scheme.
    pub precision: String,
    pub source: SourceModel,
    pub build: BuildConfig,
    pub kiln: KilnInfo,
    /// Every file of the artifact but the manifest, sorted by path.
    pub files: Vec<FileEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceModel {
    /// The file or folder name (never a full path).
    pub name: String,
    pub sha256: String,
    /// sha256 of the `--weights` checkpoint when one replaced the model's initializers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
}

/// The settings that decided what was built (sorted; flags and kiln.toml resolved).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildConfig {
    pub target: String,
    pub tune: String,
    pub dims: BTreeMap<String, usize>,
    /// Graph rewrites applied, counted per pass.
    pub passes: BTreeMap<String, usize>,
    /// Plan steps per kernel.
    pub kernels: BTreeMap<String, usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KilnInfo {
    pub version: String,
    /// The git commit Kiln was built from ("unknown" outside a git checkout).
    pub commit: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

impl Manifest {
    /// The canonical bytes: pretty JSON with a trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// A manifest's file size by path.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Total bytes of the artifact's files (manifest excluded).
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// Is `v` a semantic version (`MAJOR.MINOR.PATCH`, optional `-pre` / `+build`)?
pub(crate) fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && (p.len() == 1 || !p.starts_with('0')))
}

#[cfg(test)]
mod tests {
    #[test]
    fn semver() {
        for ok in ["0.1.0", "1.2.3", "10.0.0-rc.1", "1.0.0+abc"] {
            assert!(super::is_semver(ok), "{ok}");
        }
        for bad in ["1.2", "01.2.3", "a.b.c", "", "1.2.3.4"] {
            assert!(!super::is_semver(bad), "{bad}");
        }
    }
}

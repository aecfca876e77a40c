//! The OCI shapes Kiln writes and reads, and Kiln's documented media types.
//!
//! One Kiln artifact (one target, one precision) is one OCI image manifest:
//! `artifactType` [`ARTIFACT_TYPE`]; the config blob is the artifact's `manifest.json`
//! ([`CONFIG_MEDIA_TYPE`]), so the config digest *is* the artifact digest `kiln verify` prints;
//! one layer per file, titled with its path (`org.opencontainers.image.title`). A version is an
//! image index tagged with the version, one entry per target manifest, each entry carrying
//! [`ANN_TARGET`] and [`ANN_PRECISION`]. Evidence (signature, attestations, report) is pushed as
//! referrers: image manifests whose `subject` is the target manifest.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const ARTIFACT_TYPE: &str = "application/vnd.kiln.artifact.v1";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.kiln.manifest.v1+json";
pub const PLAN_MEDIA_TYPE: &str = "application/vnd.kiln.plan.v1+json";
pub const WEIGHTS_MEDIA_TYPE: &str = "application/vnd.kiln.weights.v1";
pub const FILE_MEDIA_TYPE: &str = "application/vnd.kiln.file.v1";
/// Referrer holding `artifact.sig` (an ed25519 signature over the artifact digest).
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.kiln.signature.v1+json";
/// Referrer holding one in-toto statement in a DSSE envelope (provenance, build, validation).
pub const ATTESTATION_ARTIFACT_TYPE: &str = "application/vnd.kiln.attestation.v1";
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// Referrer holding the rendered validation report (`report/` files).
pub const REPORT_ARTIFACT_TYPE: &str = "application/vnd.kiln.report.v1";

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_JSON: &[u8] = b"{}";

pub const ANN_TITLE: &str = "org.opencontainers.image.title";
pub const ANN_VERSION: &str = "org.opencontainers.image.version";
pub const ANN_SOURCE: &str = "org.opencontainers.image.source";
pub const ANN_REVISION: &str = "org.opencontainers.image.revision";
pub const ANN_CREATED: &str = "org.opencontainers.image.created";
pub const ANN_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ANN_NAME: &str = "dev.kiln.name";
pub const ANN_TARGET: &str = "dev.kiln.target";
pub const ANN_PRECISION: &str = "dev.kiln.precision";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn new(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: digest_of(bytes),
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    pub fn new(artifact_type: Option<&str>) -> ImageIndex {
        ImageIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            artifact_type: artifact_type.map(Into::into),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", kiln_artifact::sha256_hex(bytes))
}

/// The hex part of a `sha256:` digest, checked (64 lower-case hex digits), so it can name a file.
pub fn digest_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))).then_some(hex)
}

/// Canonical JSON bytes of an OCI object (compact, as registries store them).
pub fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// The layer media type for an artifact file.
pub fn file_media_type(path: &str) -> &'static str {
    match path {
        "plan.json" => PLAN_MEDIA_TYPE,
        "weights.bin" => WEIGHTS_MEDIA_TYPE,
        _ => FILE_MEDIA_TYPE,
    }
}

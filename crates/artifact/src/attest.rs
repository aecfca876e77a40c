//! in-toto Statements (v1) in DSSE envelopes, signed with ed25519.

use crate::error::{ArtifactError, invalid, io};
use crate::sign::KeyPair;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_PROVENANCE: &str = "https://slsa.dev/provenance/v1";
pub(crate) const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    pub digest: BTreeMap<String, String>,
}

/// An in-toto v1 statement: `predicate` says something about each subject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: serde_json::Value,
}

/// A statement about one artifact (`name`, digest `sha256:<hex>`).
pub fn statement(name: &str, artifact_digest: &str, predicate_type: &str, predicate: serde_json::Value) -> Statement {
    let hex = artifact_digest.strip_prefix("sha256:").unwrap_or(artifact_digest);
    Statement {
        type_: STATEMENT_TYPE.into(),
        subject: vec![Subject { name: name.into(), digest: BTreeMap::from([("sha256".into(), hex.into())]) }],
        predicate_type: predicate_type.into(),
        predicate,
    }
}

/// A SLSA v1 provenance statement: what was built (the artifact), from what (the source model,
/// by digest), by which config, with which Kiln.
pub fn provenance_statement(name: &str, artifact_digest: &str, source_name: &str, source_sha256: &str, build: serde_json::Value, kiln_version: &str, kiln_commit: &str) -> Statement {
    let predicate = serde_json::json!({
        "buildDefinition": {
            "buildType": "https://kiln.invalid/build/compile/v1",
            "externalParameters": build,
            "resolvedDependencies": [{"name": source_name, "digest": {"sha256": source_sha256}}],
        },
        "runDetails": {
            "builder": {"id": "https://kiln.invalid/kiln", "version": {"kiln": kiln_version, "commit": kiln_commit}},
        },
    });
    statement(name, artifact_digest, PREDICATE_PROVENANCE, predicate)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    pub keyid: String,
    pub sig: String,
}

/// A DSSE envelope: the statement as base64 payload and signatures over its PAE encoding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// DSSE pre-authentication encoding.
pub(crate) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    v.extend_from_slice(payload);
    v
}

impl Envelope {
    /// Wraps a statement, signed by `key` when given (unsigned otherwise).
    pub fn new(statement: &Statement, key: Option<&KeyPair>) -> Envelope {
        let payload = serde_json::to_vec(statement).unwrap_or_default();
        let signatures = key
            .map(|k| vec![EnvelopeSignature { keyid: k.public().key_id(), sig: B64.encode(k.sign(&pae(PAYLOAD_TYPE, &payload))) }])
            .unwrap_or_default();
        Envelope { payload_type: PAYLOAD_TYPE.into(), payload: B64.encode(payload), signatures }
    }

    pub fn payload_bytes(&self) -> Option<Vec<u8>> {
        B64.decode(&self.payload).ok()
    }

    pub fn statement(&self) -> Option<Statement> {
        serde_json::from_slice(&self.payload_bytes()?).ok()
    }
}

/// Reads an envelope file.
pub fn read_envelope(path: &Path) -> Result<Envelope, ArtifactError> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| invalid(path, format!("not a DSSE envelope: {e}")))
}

//! Kiln's deployable artifact.
//!
//! An artifact is a folder (and, on request, a single-file tar archive of it) holding
//! `manifest.json` and the files it lists (plan, weights, tuning decisions). The manifest names
//! a sha256 digest for every file; **the artifact's digest is the sha256 of `manifest.json`**.
//! Nothing inside depends on time, ordering or measurement, so the same inputs, config and
//! tuning decisions give a byte-identical artifact.
//!
//! Evidence about an artifact (validation reports, tuning timings, provenance) varies from run
//! to run, so it lives beside it, in `<ARTIFACT>.attestations/`: in-toto statements whose
//! subject is the artifact digest, in DSSE envelopes signed with ed25519, plus `artifact.sig`
//! (a signature over the digest) and rendered reports. None of that is inside the digest.
//!
//! Architecture invariant: knows files, digests, keys and statements; nothing of models,
//! targets, plans or the CLI. Every write is atomic (temporary sibling + rename).

mod archive;
mod attest;
mod digest;
mod error;
mod manifest;
mod sign;
mod verify;
mod write;

pub use archive::{pack, unpack};
pub use attest::{Envelope, Statement, Subject, provenance_statement, read_envelope, statement, PREDICATE_PROVENANCE, STATEMENT_TYPE};
pub use digest::{sha256_hex, source_digest};
pub use error::ArtifactError;
pub use manifest::{BuildConfig, FileEntry, KilnInfo, Manifest, SourceModel, MANIFEST_FILE, MANIFEST_SCHEMA_VERSION};
pub use sign::{ArtifactSignature, KeyPair, PublicKey, keygen, read_public_key, read_secret_key, sign_digest, verify_digest_signature};
pub use verify::{Check, VerifyReport, verify};
pub use write::{attestations_dir, write_artifact, write_atomic, write_attestation, ArtifactOutput};

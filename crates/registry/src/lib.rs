//! Kiln artifacts as OCI content.
//!
//! An artifact folder becomes an OCI image manifest per target (config = the artifact's
//! `manifest.json`, one layer per file) gathered under an image index per version, with its
//! evidence (signature, attestations, report) as referrers (`media` documents the media types).
//! The same publish and pull code runs against a [`Repository`]: the local store (an OCI image
//! layout folder, `layout`) or a registry over the distribution API (`remote`).
//!
//! Architecture invariant: knows artifacts as files and digests (through `kiln-artifact`), OCI
//! formats and HTTP; nothing of models, plans, targets or the CLI. Every blob read is checked
//! against its digest and declared size before anything is trusted; pulled files are written
//! into a fresh temporary folder (no absolute paths, `..` or symlinks) that replaces the
//! destination only after the artifact verifies; a tag is written last.

mod auth;
mod error;
mod layout;
pub mod media;
mod publish;
mod pull;
mod reference;
mod remote;
mod repo;
mod safe;

pub use auth::{Credentials, docker_config_path, from_docker_config, lookup as lookup_credentials};
pub use error::RegistryError;
pub use layout::{LocalRepo, LocalStore, StoreEntry, default_store_path};
pub use publish::{EvidenceGroup, PublishOptions, Published, evidence_groups, publish, referrers_tag, target_tag};
pub use pull::{PullOptions, Pulled, list_referrers, pull, resolve};
pub use reference::{Reference, RemoteRef, is_tag, parse as parse_reference, version_tag};
pub use remote::{Remote, RemoteOptions};
pub use repo::{Content, PutManifest, Repository, copy_verified, fetch_small};
pub use safe::{check_relative, create_file};

use thiserror::Error;

/// Everything that can go wrong between an artifact folder, a store and a registry. Each
/// message names what failed and, where there is one, the way out.
#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("'{0}' is not a reference: write HOST[:PORT]/REPOSITORY[:TAG|@sha256:DIGEST] for a registry, or NAME[:VERSION] for the local store")]
    BadReference(String),
    #[error("{url}: {reason} (after {attempts} attempt(s); is the registry up? `--retries N` tries longer)")]
    Transport { url: String, reason: String, attempts: u32 },
    #[error("{url}: {status} {reason}")]
    Status { url: String, status: u16, reason: String },
    #[error(
        "{registry}: authentication failed ({reason}); give --username and --password-stdin, or log in so that a docker config.json ($DOCKER_CONFIG/config.json or ~/.docker/config.json) holds credentials for it"
    )]
    Unauthorized { registry: String, reason: String },
    #[error("{reference}: not found")]
    NotFound { reference: String },
    #[error("blob {digest}: {reason}; the registry or store holds corrupt or substituted content: refusing it")]
    DigestMismatch { digest: String, reason: String },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("refusing to unpack '{path}': {reason}")]
    Unsafe { path: String, reason: String },
    #[error("{0}")]
    Artifact(#[from] kiln_artifact::ArtifactError),
}

pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> RegistryError {
    RegistryError::Io { path: path.display().to_string(), source }
}

pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> RegistryError {
    RegistryError::Invalid { what: what.into(), reason: reason.into() }
}

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ArtifactError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("{0} exists and is not a Kiln artifact (no manifest.json, no plan.json); refusing to replace it")]
    NotAnArtifact(String),
}

pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> ArtifactError {
    ArtifactError::Io { path: path.display().to_string(), source }
}

pub(crate) fn invalid(path: &std::path::Path, reason: impl Into<String>) -> ArtifactError {
    ArtifactError::Invalid { path: path.display().to_string(), reason: reason.into() }
}

/// A target's failure: lowering, loading, running, or reading a plan or tuning cache.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("target {target} is not available here: {reason} ({remedy})")]
    Unavailable { target: String, reason: String, remedy: String },
    #[error("cannot lower node '{node}' ({op}) for {target}: {reason}")]
    Lower { target: String, node: String, op: String, reason: String },
    #[error("step {step} ({kernel}): {reason}")]
    Run { step: usize, kernel: String, reason: String },
    #[error("input '{name}': {reason}")]
    Input { name: String, reason: String },
    #[error("plan at {path}: {reason}")]
    Plan { path: String, reason: String },
    #[error("tuning cache at {path}: {reason}")]
    Cache { path: String, reason: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

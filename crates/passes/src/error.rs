use kiln_ir::IrError;

/// Why a pass or the pipeline failed; every variant names the pass, node or phase at fault.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum PassError {
    /// A derived fact contradicts what the graph declares (or two inputs cannot agree).
    #[error("node '{node}' ({op}): {message}")]
    Conflict { node: String, op: String, message: String },
    /// Evaluating a node on constants failed: the model would fail at run time too.
    #[error("pass {pass}: node '{node}' ({op}): {message}")]
    Node { pass: &'static str, node: String, op: String, message: String },
    #[error("pass {pass} did not converge: it still returned a patch after {iterations} rounds (last: {last})")]
    NoConvergence { pass: &'static str, iterations: usize, last: String },
    #[error("pass {pass} broke the graph with \"{description}\": {source}")]
    Broken { pass: &'static str, description: String, source: IrError },
    #[error("no phase named '{name}' (phases: {known})")]
    UnknownPhase { name: String, known: String },
    #[error(transparent)]
    Ir(#[from] IrError),
}

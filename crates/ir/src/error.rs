/// A graph that breaks an IR rule; every variant names the node or value at fault.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum IrError {
    #[error("node '{node}' ({op}) reads value '{value}', which no node, input or initializer defines")]
    Dangling { node: String, op: String, value: String },
    #[error("graph output '{value}' is never defined")]
    DanglingOutput { value: String },
    #[error("value '{value}' is defined twice (by {first} and {second})")]
    Redefined { value: String, first: String, second: String },
    #[error("the graph has a cycle through node '{node}' ({op})")]
    Cycle { node: String, op: String },
    #[error("node '{node}' ({op}): {message}")]
    Type { node: String, op: String, message: String },
    #[error("value id {id} is out of range in graph '{graph}'")]
    BadValueId { graph: String, id: usize },
    #[error("in subgraph '{attr}' of node '{node}': {inner}")]
    Subgraph { node: String, attr: String, inner: Box<IrError> },
}

//! The graph IR every Kiln stage reads and writes.
//!
//! A [`Model`] owns a top-level [`Graph`]; graphs own [`Node`]s and typed values
//! ([`ValueInfo`]) addressed by [`ValueId`]. Subgraphs (If/Loop/Scan bodies) are
//! [`Attr::Graph`] attributes and may read values of enclosing graphs by name.
//!
//! Architecture invariant: this crate knows nothing of ONNX protobuf, file formats,
//! executors or targets. Op semantics live with the executors; the IR only carries
//! op names, domains, attributes and the opset they were imported under.

mod attr;
mod dump;
mod error;
mod graph;
mod opset;
mod patch;
mod verify;

pub use attr::Attr;
pub use dump::dump;
pub use error::IrError;
pub use graph::{DEFAULT_DOMAIN, Graph, Model, Node, NodeId, ValueId, ValueInfo, subgraph_reads};
pub use patch::{GraphPatch, compact};
pub use opset::{OpSet, normalize as normalize_domain};
pub use verify::verify;

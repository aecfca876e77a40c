//! Graph passes. Each pass reads a graph and returns a [`kiln_ir::GraphPatch`] (or nothing);
//! the driver applies patches until no pass has more to do.
//!
//! Architecture invariant: passes know nothing of targets, files or the CLI; they change a
//! graph only through patches, and never change what the graph computes beyond float rounding.

//! Graph passes. Each pass reads a graph and returns a [`kiln_ir::GraphPatch`] (or nothing);
//! the driver ([`optimize`]) applies a pass's patches until it has no more, then moves to the
//! next pass of the pipeline.
//!
//! The passes of [`default_pipeline`], in order (each is a named phase, see [`phase_names`]):
//! shape inference with symbolic dims, QDQ int8 fusion (`kiln::QMatMul`, `kiln::QConv`),
//! weight-only low-precision MatMuls (`kiln::WMatMul`),
//! constant folding, identity removal, transpose/reshape
//! simplification, dead-code removal, shape refinement, BatchNormalization (and constant
//! scale) folding, LayerNorm, GELU, HardSwish and attention pattern fusion, Conv/MatMul/Gemm +
//! bias + activation fusion, cleanup, then one Q/K/V product per attention.
//! Fused ops live in the `kiln` domain (`kiln::FusedConv`, `kiln::FusedMatMul`,
//! `kiln::Attention`); their reference kernels are in `kiln_reference::ops::kiln`.
//!
//! Architecture invariant: passes know nothing of targets, files or the CLI; they change a
//! graph only through patches, and never change what the graph computes beyond float rounding.

mod attention;
mod batchnorm;
mod chain;
mod conv_layout;
mod dce;
mod driver;
mod error;
mod fold;
mod fuse_activation;
mod gelu;
mod hardswish;
mod identity;
mod layernorm;
mod layout;
mod lowp;
mod qdq;
mod qkv;
mod shapes;
mod util;

pub use attention::FuseAttention;
pub use batchnorm::FoldBatchNorm;
pub use chain::FuseElementwise;
pub use conv_layout::ChooseConvLayout;
pub use dce::Dce;
pub use driver::{AppliedPatch, MAX_FOLD_ELEMENTS, default_pipeline, optimize, phase_names, pipeline_after, pipeline_until};
pub use error::PassError;
pub use fold::FoldConstants;
pub use fuse_activation::FuseActivation;
pub use gelu::FuseGelu;
pub use hardswish::FuseHardSwish;
pub use identity::RemoveIdentities;
pub use layernorm::FuseLayerNorm;
pub use layout::SimplifyLayout;
pub use lowp::FuseLowp;
pub use qdq::FuseQdq;
pub use qkv::FuseQkv;
pub use shapes::InferShapes;

use kiln_ir::{Graph, GraphPatch};

/// A graph rewrite: reads the graph, returns a patch when it has something to change.
/// Returning `None` means the pass has nothing (more) to do on this graph.
pub trait Pass {
    fn name(&self) -> &'static str;
    fn run(&self, g: &Graph) -> Result<Option<GraphPatch>, PassError>;
}

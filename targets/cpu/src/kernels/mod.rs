//! Kernels over plain slices, each with a scalar fallback that always exists.
//!
//! Every kernel with real choices takes a small params struct and lists its candidates with a
//! `*_candidates` function whose first entry is the safe default, so an autotuner can time
//! them. ISA-specific code is chosen at run time ([`Isa`]: AVX-512, AVX2+FMA, NEON, scalar
//! baseline); asking for an ISA the CPU lacks falls back, so every params value is safe. The
//! only `unsafe` is in `arch` (target-feature calls after detection, the `gemm` crate call) and
//! `arch_micro` (our GEMM microkernel tiles and their aligned buffers).
//!
//! | family | entry points | params (candidates) |
//! |---|---|---|
//! | CPU fingerprint | [`cpu_features`] ([`CpuFeatures::cache_key`]), [`fma_peak_gflops`] | - |
//! | GEMM f32 | [`sgemm`], [`sgemm_batched`], [`pack_b`] ([`packed_layout_for`]) + [`sgemm_packed`] | [`GemmParams`] ([`gemm_candidates`]) |
//! | convolution | [`ConvWeights::new`], [`conv2d`] | [`ConvParams`] ([`conv_candidates`]) |
//! | elementwise chains | [`run_chain`], [`run_chain_inplace`] | [`ChainParams`] ([`chain_candidates`]) |
//! | rows | [`softmax`], [`softmax_inplace`], [`layer_norm`] | [`RowParams`] ([`row_candidates`]) |
//! | attention | [`attention`] | [`AttentionParams`] ([`attention_candidates`]) |
//!
//! Activations ([`Activation`]) and biases ([`Bias`]) are fused into GEMM and convolution
//! epilogues. Kernels check every size and return [`KernelError`] rather than panic.

mod activation;
mod arch;
mod arch_micro;
mod attention;
mod chain;
mod conv;
mod depthwise;
mod error;
mod features;
mod gemm;
mod gemm_blocked;
mod im2col;
mod isa;
mod layernorm;
pub(crate) mod math;
mod micro;
mod micro_pack;
mod micro_tile;
mod pack;
mod peak;
mod rows;
mod softmax;

#[cfg(test)]
mod tests;

pub use activation::{Activation, Bias};
pub use attention::{AttentionParams, AttentionSpec, Layout, Mask, Strides, attention, attention_candidates, attention_in};
pub use chain::{Binary, ChainParams, Operand, Step, Unary, chain_candidates, run_chain, run_chain_inplace};
pub use conv::{ConvAlgo, ConvLayout, ConvParams, ConvWeights, Conv2dSpec, conv2d, conv_candidates};
pub use error::KernelError;
pub use features::{CpuFeatures, cpu_features};
pub use gemm::{Batch, GemmBackend, GemmParams, GemmSpec, gemm_candidates, sgemm, sgemm_batched};
pub use isa::Isa;
pub use layernorm::layer_norm;
pub use pack::{PackedB, PackedLayout, pack_b, packed_layout_candidates, packed_layout_for, sgemm_packed};
pub use peak::fma_peak_gflops;
pub use rows::{RowParams, row_candidates};
pub use softmax::{softmax, softmax_inplace};

//! Kernels over plain slices, each with a scalar fallback that always exists.
//!
//! Every kernel with real choices takes a small params struct and lists its candidates with a
//! `*_candidates` function whose first entry is the safe default, so an autotuner can time
//! them. ISA-specific code is chosen at run time ([`Isa`]: AVX-512, AVX2+FMA, NEON, scalar
//! baseline); asking for an ISA the CPU lacks falls back, so every params value is safe. The
//! only `unsafe` is in `arch` (target-feature calls after detection, the `gemm` crate call),
//! `arch_micro` (our GEMM microkernel tiles and their aligned buffers) and `arch_q` (the int8
//! GEMM tiles: AVX-512 VNNI, AVX-VNNI, AVX2, and their fused epilogue), `arch_qquant` (the
//! vectorised quantization loops), `arch_qamx` (the AMX int8 tile and its permission
//! request, inline assembly), `arch_wbf16` (the AVX512-BF16 weight-only tile), `arch_wamx`
//! (the AMX-BF16 tile) and `arch_wgemv` (the AVX-512 weight conversions and GEMV tile). The int8
//! kernels choose among their own levels, [`QIsa`] (VNNI is not part of [`Isa`]).
//!
//! | family | entry points | params (candidates) |
//! |---|---|---|
//! | CPU fingerprint | [`cpu_features`] ([`CpuFeatures::cache_key`]), [`fma_peak_gflops`] | - |
//! | GEMM f32 | [`sgemm`], [`sgemm_batched`], [`pack_b`] ([`packed_layout_for`]) + [`sgemm_packed`] | [`GemmParams`] ([`gemm_candidates`]) |
//! | convolution | [`ConvWeights::new`], [`conv2d`] | [`ConvParams`] ([`conv_candidates`]) |
//! | elementwise chains | [`run_chain`], [`run_chain_inplace`] | [`ChainParams`] ([`chain_candidates`]) |
//! | rows | [`softmax`], [`softmax_inplace`], [`layer_norm`] | [`RowParams`] ([`row_candidates`]) |
//! | attention | [`attention`] | [`AttentionParams`] ([`attention_candidates`]) |
//! | int8 GEMM (u8 x i8) | [`qpack_b`] + [`QuantizedA::quantize`] / [`QuantizedA::gather`] ([`QuantParams`], [`quantize_slice`]) + [`qgemm`] / [`qgemm_i32`] | [`QGemmParams`] ([`qgemm_candidates`]) |
//! | weight-only GEMM (f16 / bf16 / int4 / int8 weights, f32 or bf16 compute) | [`wpack`] + [`wgemm`] | [`WGemmParams`] ([`wgemm_candidates`]) |
//!
//! Activations ([`Activation`]) and biases ([`Bias`]) are fused into GEMM and convolution
//! epilogues. Kernels check every size and return [`KernelError`] rather than panic.

#[cfg(target_arch = "x86_64")]
pub(crate) mod act512;
mod activation;
mod arch;
#[cfg(target_arch = "x86_64")]
mod arch_direct;
#[cfg(target_arch = "x86_64")]
mod arch_dw;
mod arch_micro;
mod arch_q;
mod arch_qamx;
mod arch_qquant;
#[cfg(target_arch = "x86_64")]
mod arch_softmax;
mod arch_wamx;
mod arch_wbf16;
mod arch_wgemv;
mod attention;
mod chain;
mod conv;
mod depthwise;
mod direct;
mod error;
mod features;
mod gemm;
mod gemm_blocked;
mod im2col;
mod implicit;
mod isa;
mod layernorm;
pub(crate) mod math;
mod micro;
mod micro_pack;
mod micro_tile;
mod pack;
mod peak;
mod qgemm;
mod qgemm_part;
mod qpack;
mod rows;
mod softmax;
mod transpose_tile;
mod wgemm;
mod wgemv;
mod wpack;

#[cfg(test)]
mod tests;

pub use activation::{Activation, Bias};
pub use attention::{AttentionParams, AttentionSpec, Layout, Mask, Strides, attention, attention_candidates, attention_in, mask_strides};
pub use chain::{Binary, ChainParams, Operand, Step, Unary, chain_candidates, run_chain, run_chain_inplace};
pub use conv::{Conv2dSpec, ConvAlgo, ConvLayout, ConvParams, ConvWeights, conv_candidates, conv2d};
pub use error::KernelError;
pub use features::{CpuFeatures, cpu_features};
pub use gemm::{Batch, GemmBackend, GemmParams, GemmSpec, gemm_candidates, sgemm, sgemm_batched};
pub use isa::Isa;
pub use layernorm::layer_norm;
pub use pack::{PackedB, PackedLayout, pack_b, packed_layout_candidates, packed_layout_for, sgemm_packed};
pub use peak::fma_peak_gflops;
pub use qgemm::{QEpilogue, QGemmParams, QIsa, qgemm, qgemm_candidates, qgemm_i32};
pub use qpack::{QInts, QPackedB, QuantParams, QuantizedA, qpack_b, quantize_slice};
pub use rows::{RowParams, row_candidates};
pub use softmax::{softmax, softmax_inplace};
pub(crate) use transpose_tile::transpose8;
pub use wgemm::{WCompute, WEpilogue, WGemmParams, WPath, wgemm, wgemm_candidates};
pub use wpack::{WKind, WPANEL, WPacked, WScales, WSource, wpack};

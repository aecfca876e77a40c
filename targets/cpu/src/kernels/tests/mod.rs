//! Correctness tests of every kernel against naive implementations.

mod attention;
mod conv;
mod fused;
mod gemm;
mod gemm_micro;
mod math;
mod qgemm;
mod util;
mod wgemm;

//! Correctness tests of every kernel against naive implementations.

mod util;
mod conv;
mod gemm;

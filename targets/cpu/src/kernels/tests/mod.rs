//! Correctness tests of every kernel against naive implementations.
// Test code: a failed unwrap is the test failing, with its location.
#![allow(clippy::unwrap_used)]

mod attention;
mod conv;
mod fused;
mod gemm;
mod math;
mod util;

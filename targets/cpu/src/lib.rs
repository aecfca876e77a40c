//! Kiln's CPU target.
//!
//! Architecture invariant: CPU-specific code (feature detection, SIMD kernels, threading
//! granularity) lives here and nowhere upstream.

pub mod kernels;

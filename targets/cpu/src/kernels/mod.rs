//! Kernels over plain slices, each with a scalar fallback that always exists.

//! Pass tests: small graphs, "IR before -> IR after" as inline snapshots (IREE lit-test
//! style), and for rewrites a check that the graph computes the same before and after.

mod build;

mod attention;
mod batchnorm;
mod chain;
mod conv_layout;
mod dce;
mod driver;
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

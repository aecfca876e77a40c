//! Kiln's own fused ops (domain `kiln`), which `kiln-passes` writes into graphs.
//!
//! Each kernel computes exactly the unfused ai.onnx sequence it replaces by running the
//! registered ai.onnx kernels one step after another (`common::step`), so a fused graph and
//! its unfused original agree to float rounding (bit for bit where no constant was folded).

mod attention;
mod chain;
mod common;
mod fused_conv;
mod fused_matmul;
mod quantized;
mod weight_only;

use crate::{Kernel, Registry};

pub fn register(r: &mut Registry) {
    r.insert("kiln", "FusedConv", 1..=1, Kernel::Tensor(fused_conv::fused_conv));
    r.insert("kiln", "FusedMatMul", 1..=1, Kernel::Tensor(fused_matmul::fused_matmul));
    r.insert("kiln", "Attention", 1..=1, Kernel::Tensor(attention::attention));
    r.insert("kiln", "Chain", 1..=1, Kernel::Tensor(chain::chain));
    r.insert("kiln", "QMatMul", 1..=1, Kernel::Tensor(quantized::q_matmul));
    r.insert("kiln", "QConv", 1..=1, Kernel::Tensor(quantized::q_conv));
    r.insert("kiln", "WMatMul", 1..=1, Kernel::Tensor(weight_only::w_matmul));
}

#[cfg(test)]
mod tests;

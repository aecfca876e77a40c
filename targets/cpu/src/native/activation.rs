//! The `activation*` attributes of kiln fused ops, as a kernel epilogue.

use crate::kernels::Activation;
use kiln_ir::Node;
use kiln_target::Step;

/// Reads a fused node's activation; None when the kernels have no such epilogue.
pub fn from_node(n: &Node) -> Option<Activation> {
    let f = |k: &str| n.attr_float(k);
    parse(
        n.attr_str("activation").unwrap_or("none"),
        f("activation_alpha"),
        f("activation_beta"),
        f("activation_min"),
        f("activation_max"),
        n.attr_str("activation_approximate"),
    )
}

/// The same from a plan step's attributes.
pub fn from_step(s: &Step) -> Option<Activation> {
    let f = |k: &str| super::step_float(s, k);
    let st = |k: &str| super::step_str(s, k);
    parse(
        st("activation").unwrap_or("none"),
        f("activation_alpha"),
        f("activation_beta"),
        f("activation_min"),
        f("activation_max"),
        st("activation_approximate"),
    )
}

fn parse(
    name: &str,
    alpha: Option<f32>,
    beta: Option<f32>,
    min: Option<f32>,
    max: Option<f32>,
    approx: Option<&str>,
) -> Option<Activation> {
    Some(match name {
        "none" => Activation::None,
        "relu" => Activation::Relu,
        "leaky_relu" => Activation::LeakyRelu { alpha: alpha.unwrap_or(0.01) },
        "clip" => Activation::Clip { min: min.unwrap_or(f32::NEG_INFINITY), max: max.unwrap_or(f32::INFINITY) },
        "sigmoid" => Activation::Sigmoid,
        "hard_sigmoid" => Activation::HardSigmoid { alpha: alpha.unwrap_or(0.2), beta: beta.unwrap_or(0.5) },
        "hard_swish" => Activation::HardSwish,
        "tanh" => Activation::Tanh,
        "gelu" => match approx.unwrap_or("none") {
            "none" => Activation::Gelu,
            "tanh" => Activation::GeluTanh,
            _ => return None,
        },
        "silu" => Activation::Silu,
        _ => return None,
    })
}

//! Elementwise functions as WGSL expressions: unary ops, activations (the fused epilogue of
//! GEMM and convolution too) and binary ops. One generator serves chains, single ops and
//! epilogues, so they agree.

use kiln_target::{AttrValue, Step};

/// A WGSL float literal (WGSL has no infinities: the largest finite f32 stands in).
pub fn lit(f: f32) -> String {
    if f.is_nan() {
        "0.0".into()
    } else if f == f32::INFINITY {
        "3.4028235e38".into()
    } else if f == f32::NEG_INFINITY {
        "-3.4028235e38".into()
    } else {
        format!("{f:?}")
    }
}

/// Helper functions every generated shader may call.
pub const PRELUDE: &str = r#"
// a / b rounded as IEEE division rounds. Vulkan lets a driver divide to 2.5 ulp (NVIDIA's
// does: reciprocal, then multiply), which moves round-half-to-even ties when a value is
// quantized, a whole step away from the CPU target; and `fma` may be unfused, so no residual
// step can fix it. Here the significands are divided bit by bit in integers (exact on any
// device) and rounded to nearest even. Zeros, infinities, NaN, subnormal operands and results
// outside the normal range keep the driver's quotient.
fn k_div(a: f32, b: f32) -> f32 {
    let q = a / b;
    let ia = bitcast<u32>(a);
    let ib = bitcast<u32>(b);
    let ea = i32((ia >> 23u) & 0xffu);
    let eb = i32((ib >> 23u) & 0xffu);
    if (ea == 0 || eb == 0 || ea == 255 || eb == 255) { return q; }
    var r = (ia & 0x7fffffu) | 0x800000u;
    let mb = (ib & 0x7fffffu) | 0x800000u;
    var e = ea - eb + 127;
    if (r < mb) { r = r << 1u; e = e - 1; }
    // 24 significant bits and one rounding bit; r < 2 * mb < 2^25 throughout.
    var m = 0u;
    for (var i = 0u; i < 25u; i = i + 1u) {
        m = m << 1u;
        if (r >= mb) { r = r - mb; m = m | 1u; }
        r = r << 1u;
    }
    let round_bit = m & 1u;
    m = m >> 1u;
    if (round_bit == 1u && (r != 0u || (m & 1u) == 1u)) { m = m + 1u; }
    if (m == 0x1000000u) { m = m >> 1u; e = e + 1; }
    if (e <= 0 || e >= 255) { return q; }
    return bitcast<f32>(((ia ^ ib) & 0x80000000u) | (u32(e) << 23u) | (m & 0x7fffffu));
}
fn k_erf(x: f32) -> f32 {
    // Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
    let s = sign(x);
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
    return s * y;
}
fn k_tanh(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
}
fn k_sigmoid(x: f32) -> f32 {
    if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
    let e = exp(x);
    return e / (1.0 + e);
}
fn k_isnan(x: f32) -> bool {
    return !(x == x);
}
fn k_max(a: f32, b: f32) -> f32 {
    if (k_isnan(a) || k_isnan(b)) { return a + b; }
    return max(a, b);
}
fn k_min(a: f32, b: f32) -> f32 {
    if (k_isnan(a) || k_isnan(b)) { return a + b; }
    return min(a, b);
}
"#;

/// A unary op or activation applied to the expression `x`, or None when unknown.
pub fn unary(name: &str, alpha: f32, beta: f32, x: &str) -> Option<String> {
    Some(match name {
        "none" | "Identity" => x.to_string(),
        "Relu" | "relu" => format!("max({x}, 0.0)"),
        "Sigmoid" | "sigmoid" => format!("k_sigmoid({x})"),
        "Tanh" | "tanh" => format!("k_tanh({x})"),
        "HardSwish" | "hard_swish" => format!("({x} * clamp({x} / 6.0 + 0.5, 0.0, 1.0))"),
        "HardSigmoid" | "hard_sigmoid" => format!("clamp({} * {x} + {}, 0.0, 1.0)", lit(alpha), lit(beta)),
        "LeakyRelu" | "leaky_relu" => format!("select({} * {x}, {x}, {x} >= 0.0)", lit(alpha)),
        "Clip" | "clip" => format!("min(max({x}, {}), {})", lit(alpha), lit(beta)),
        "Gelu" | "gelu" => format!("(0.5 * {x} * (1.0 + k_erf({x} * 0.70710678118654752)))"),
        "GeluTanh" | "gelu_tanh" => format!("(0.5 * {x} * (1.0 + k_tanh(0.7978845608028654 * ({x} + 0.044715 * {x} * {x} * {x}))))"),
        "silu" | "Silu" => format!("({x} * k_sigmoid({x}))"),
        "Neg" => format!("(-{x})"),
        "Abs" => format!("abs({x})"),
        "Square" => format!("({x} * {x})"),
        "Sqrt" => format!("sqrt({x})"),
        "Reciprocal" => format!("k_div(1.0, {x})"),
        "Exp" => format!("exp({x})"),
        "Log" => format!("log({x})"),
        _ => return None,
    })
}

/// `a op b` for a binary op, or None.
pub fn binary(name: &str, a: &str, b: &str) -> Option<String> {
    Some(match name {
        "Add" => format!("({a} + {b})"),
        "Sub" => format!("({a} - {b})"),
        "Mul" => format!("({a} * {b})"),
        "Div" => format!("k_div({a}, {b})"),
        "Max" => format!("k_max({a}, {b})"),
        "Min" => format!("k_min({a}, {b})"),
        // Slope `b` where `a` is negative (NaN stays NaN).
        "PRelu" => format!("select({b} * {a}, {a}, {a} >= 0.0)"),
        _ => return None,
    })
}

pub fn is_binary(name: &str) -> bool {
    binary(name, "a", "b").is_some()
}

pub fn step_float(s: &Step, k: &str) -> Option<f32> {
    match s.attrs.get(k) {
        Some(AttrValue::Float(v)) => Some(*v),
        Some(AttrValue::Int(v)) => Some(*v as f32),
        _ => None,
    }
}

pub fn step_int(s: &Step, k: &str) -> Option<i64> {
    match s.attrs.get(k) {
        Some(AttrValue::Int(v)) => Some(*v),
        _ => None,
    }
}

pub fn step_ints(s: &Step, k: &str) -> Option<Vec<i64>> {
    match s.attrs.get(k) {
        Some(AttrValue::Ints(v)) => Some(v.clone()),
        _ => None,
    }
}

pub fn step_str<'s>(s: &'s Step, k: &str) -> Option<&'s str> {
    match s.attrs.get(k) {
        Some(AttrValue::String(v)) => Some(v.as_str()),
        _ => None,
    }
}

/// The fused-op epilogue (`activation*` attributes) applied to `x`, as the CPU kernels read it.
pub fn epilogue(s: &Step, x: &str) -> Option<String> {
    let f = |k: &str| step_float(s, k);
    let name = step_str(s, "activation").unwrap_or("none");
    match name {
        "clip" => unary("clip", f("activation_min").unwrap_or(f32::NEG_INFINITY), f("activation_max").unwrap_or(f32::INFINITY), x),
        "gelu" => match step_str(s, "activation_approximate").unwrap_or("none") {
            "none" => unary("gelu", 0.0, 0.0, x),
            "tanh" => unary("gelu_tanh", 0.0, 0.0, x),
            _ => None,
        },
        "leaky_relu" => unary(name, f("activation_alpha").unwrap_or(0.01), 0.0, x),
        "hard_sigmoid" => unary(name, f("activation_alpha").unwrap_or(0.2), f("activation_beta").unwrap_or(0.5), x),
        _ => unary(name, 0.0, 0.0, x),
    }
}

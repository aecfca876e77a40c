//! Activations fused into kernel epilogues (and usable as elementwise-chain steps).

use super::math;

/// An elementwise activation. All keep NaN as NaN.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Activation {
    #[default]
    None,
    Relu,
    /// Clip to `[min, max]` (relu6 is `Clip { min: 0, max: 6 }`).
    Clip {
        min: f32,
        max: f32,
    },
    /// `x` if `x >= 0`, else `alpha * x`.
    LeakyRelu {
        alpha: f32,
    },
    Sigmoid,
    /// `clamp(alpha * x + beta, 0, 1)` (ONNX defaults: alpha 0.2, beta 0.5).
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x * clamp(x / 6 + 0.5, 0, 1)`.
    HardSwish,
    Tanh,
    /// Exact gelu: `0.5 x (1 + erf(x / sqrt 2))`.
    Gelu,
    /// Tanh-approximated gelu.
    GeluTanh,
    /// `x * sigmoid(x)` (swish).
    Silu,
}

impl Activation {
    /// relu6 = clip to [0, 6].
    pub const RELU6: Activation = Activation::Clip { min: 0.0, max: 6.0 };

    /// The activation of one value (the scalar reference the slice version must equal).
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            Activation::Clip { min, max } => clip(x, min, max),
            Activation::LeakyRelu { alpha } => {
                if x < 0.0 {
                    alpha * x
                } else {
                    x
                }
            }
            Activation::Sigmoid => math::sigmoid(x),
            Activation::HardSigmoid { alpha, beta } => clip(alpha * x + beta, 0.0, 1.0),
            Activation::HardSwish => x * clip(x * (1.0 / 6.0) + 0.5, 0.0, 1.0),
            Activation::Tanh => math::tanh(x),
            Activation::Gelu => math::gelu(x),
            Activation::GeluTanh => math::gelu_tanh(x),
            Activation::Silu => x * math::sigmoid(x),
        }
    }

    /// Apply to every element (the match is hoisted out of the loop, so each arm vectorises).
    #[inline(always)]
    pub fn apply_slice(self, xs: &mut [f32]) {
        macro_rules! each {
            ($v:ident => $e:expr) => {
                for $v in xs.iter_mut() {
                    *$v = $e;
                }
            };
        }
        match self {
            Activation::None => {}
            Activation::Relu => each!(v => if *v < 0.0 { 0.0 } else { *v }),
            Activation::Clip { min, max } => each!(v => clip(*v, min, max)),
            Activation::LeakyRelu { alpha } => each!(v => if *v < 0.0 { alpha * *v } else { *v }),
            Activation::Sigmoid => each!(v => math::sigmoid(*v)),
            Activation::HardSigmoid { alpha, beta } => {
                each!(v => clip(alpha * *v + beta, 0.0, 1.0))
            }
            Activation::HardSwish => each!(v => *v * clip(*v * (1.0 / 6.0) + 0.5, 0.0, 1.0)),
            Activation::Tanh => each!(v => math::tanh(*v)),
            Activation::Gelu => each!(v => math::gelu(*v)),
            Activation::GeluTanh => each!(v => math::gelu_tanh(*v)),
            Activation::Silu => each!(v => *v * math::sigmoid(*v)),
        }
    }

    /// Every variant with typical parameters (for tests and benches).
    pub fn all() -> Vec<Activation> {
        vec![
            Activation::None,
            Activation::Relu,
            Activation::RELU6,
            Activation::LeakyRelu { alpha: 0.01 },
            Activation::Sigmoid,
            Activation::HardSigmoid { alpha: 0.2, beta: 0.5 },
            Activation::HardSwish,
            Activation::Tanh,
            Activation::Gelu,
            Activation::GeluTanh,
            Activation::Silu,
        ]
    }
}

#[inline(always)]
fn clip(x: f32, lo: f32, hi: f32) -> f32 {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

/// Epilogue over rows of a row-major block (`n` used columns, row stride `ldc`, the first row
/// being row `row0` of the whole output): add a bias (per row or per column), then apply `act`.
#[inline(always)]
pub(crate) fn bias_act_body(c: &mut [f32], n: usize, ldc: usize, row0: usize, bias: Bias<'_>, act: Activation) {
    if n == 0 || ldc < n {
        return;
    }
    for (r, row) in c.chunks_mut(ldc).enumerate() {
        let Some(row) = row.get_mut(..n) else { break };
        match bias {
            Bias::None => {}
            Bias::PerRow(b) => {
                let v = b.get(row0 + r).copied().unwrap_or(0.0);
                row.iter_mut().for_each(|x| *x += v);
            }
            Bias::PerCol(b) => row.iter_mut().zip(b).for_each(|(x, v)| *x += *v),
        }
        act.apply_slice(row);
    }
}

/// A bias added in a GEMM or convolution epilogue.
#[derive(Clone, Copy, Debug, Default)]
pub enum Bias<'a> {
    #[default]
    None,
    /// One value per output row (`len == m`; for NCHW convolution: per output channel).
    PerRow(&'a [f32]),
    /// One value per output column (`len == n`; for a linear layer: per output feature).
    PerCol(&'a [f32]),
}

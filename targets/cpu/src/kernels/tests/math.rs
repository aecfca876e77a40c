use crate::kernels::math;
use crate::kernels::*;

fn grid(lo: f32, hi: f32, n: usize) -> Vec<f32> {
    (0..=n).map(|i| lo + (hi - lo) * i as f32 / n as f32).collect()
}

/// Max relative error (in units of f32 epsilon) of `f` against `g` over `xs`.
fn max_rel_ulps(xs: &[f32], f: impl Fn(f32) -> f32, g: impl Fn(f64) -> f64) -> f64 {
    xs.iter()
        .map(|&x| {
            let want = g(f64::from(x));
            let got = f64::from(f(x));
            if want == 0.0 { got.abs() / f64::from(f32::MIN_POSITIVE) } else { ((got - want) / want).abs() / f64::from(f32::EPSILON) }
        })
        .fold(0.0, f64::max)
}

#[test]
fn exp_ln_tanh_accuracy() {
    let xs = grid(-87.0, 88.0, 200_000);
    assert!(max_rel_ulps(&xs, math::exp, f64::exp) < 4.0);
    let pos: Vec<f32> = (0..200_000).map(|i| 10f32.powf(-37.0 + 74.0 * i as f32 / 200_000.0)).collect();
    let err = pos.iter().map(|&x| (f64::from(math::ln(x)) - f64::from(x).ln()).abs()).fold(0.0, f64::max);
    assert!(err < 1.5e-7 * 90.0, "ln abs err {err}");
    assert!(max_rel_ulps(&grid(-9.0, 9.0, 100_000), math::tanh, f64::tanh) < 6.0);
    assert!(max_rel_ulps(&grid(-80.0, 30.0, 100_000), math::sigmoid, |x| 1.0 / (1.0 + (-x).exp())) < 8.0);
}

#[test]
fn special_values() {
    assert_eq!(math::exp(100.0), f32::INFINITY);
    assert_eq!(math::exp(f32::INFINITY), f32::INFINITY);
    assert_eq!(math::exp(-100.0), 0.0);
    assert_eq!(math::exp(f32::NEG_INFINITY), 0.0);
    assert!(math::exp(f32::NAN).is_nan());
    assert_eq!(math::exp(0.0), 1.0);
    assert!(math::ln(-1.0).is_nan());
    assert!(math::ln(f32::NAN).is_nan());
    assert_eq!(math::ln(0.0), f32::NEG_INFINITY);
    assert_eq!(math::ln(f32::INFINITY), f32::INFINITY);
    assert_eq!(math::ln(1.0), 0.0);
    assert_eq!(math::tanh(50.0), 1.0);
    assert_eq!(math::tanh(-50.0), -1.0);
    assert!(math::tanh(f32::NAN).is_nan());
    assert_eq!(math::sigmoid(-200.0), 0.0);
    assert_eq!(math::sigmoid(200.0), 1.0);
    for act in Activation::all() {
        assert!(act.apply(f32::NAN).is_nan(), "{act:?}");
    }
    assert!(math::max(&[1.0, f32::NAN, 3.0]).is_nan());
    let mut v: Vec<f32> = (0..40).map(|i| i as f32).collect();
    v[33] = f32::NAN;
    assert!(math::max(&v).is_nan());
}

/// f64 definitions of the activations.
fn act_ref(act: Activation, x: f64) -> f64 {
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    match act {
        Activation::None => x,
        Activation::Relu => x.max(0.0),
        Activation::Clip { min, max } => x.clamp(f64::from(min), f64::from(max)),
        Activation::LeakyRelu { alpha } => {
            if x < 0.0 {
                f64::from(alpha) * x
            } else {
                x
            }
        }
        Activation::Sigmoid => sig(x),
        Activation::HardSigmoid { alpha, beta } => (f64::from(alpha) * x + f64::from(beta)).clamp(0.0, 1.0),
        Activation::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
        Activation::Tanh => x.tanh(),
        Activation::Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        Activation::GeluTanh => 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh()),
        Activation::Silu => x * sig(x),
    }
}

/// erf in f64: Taylor series for |x| < 2.5, else 1 - erfc by its continued fraction.
fn erf(x: f64) -> f64 {
    let a = x.abs();
    if a >= 2.5 {
        let mut cf = a;
        for n in (1..=80).rev() {
            cf = a + f64::from(n) / 2.0 / cf;
        }
        let erfc = (-a * a).exp() / (std::f64::consts::PI.sqrt() * cf);
        return x.signum() * (1.0 - erfc);
    }
    let mut sum = 0.0f64;
    let mut term = x;
    for k in 0..200 {
        let kf = f64::from(k);
        sum += term / (2.0 * kf + 1.0);
        term *= -x * x / (kf + 1.0);
        if term.abs() < 1e-18 {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn activations_every_isa() {
    let xs = grid(-12.0, 12.0, 20_011);
    for act in Activation::all() {
        for isa in Isa::available() {
            let mut got = vec![0.0; xs.len()];
            let steps = [Step::unary(Unary::Act(act))];
            run_chain(&xs, xs.len(), &steps, &mut got, &ChainParams { isa, ..Default::default() }).unwrap();
            for (x, g) in xs.iter().zip(&got) {
                let want = act_ref(act, f64::from(*x));
                let err = (f64::from(*g) - want).abs();
                assert!(err <= 3e-7 + 4e-7 * want.abs(), "{act:?} {isa}: x={x} got {g} want {want}");
                assert_eq!(*g, act.apply(*x), "{act:?} {isa}: slice and scalar paths differ at {x}");
            }
        }
    }
}

/// The AVX-512 register activations (the micro GEMM tile's epilogue) against the f64
/// definitions, on the same grid and bounds as the slice paths, and on special values.
#[cfg(target_arch = "x86_64")]
#[test]
fn register_activations_avx512() {
    if !Isa::Avx512.is_available() {
        eprintln!("skipped: this CPU lacks AVX-512 (the register activations run only there)");
        return;
    }
    let mut xs = grid(-12.0, 12.0, 20_011);
    xs.extend([0.0, -0.0, 1e-30, -1e-30, 30.0, -30.0, 87.0, -87.0, 100.0, -100.0, f32::MAX, f32::MIN]);
    for act in Activation::all() {
        let mut got = xs.clone();
        assert!(crate::kernels::act512::apply_slice(act, &mut got));
        for (x, g) in xs.iter().zip(&got) {
            let want = act_ref(act, f64::from(*x));
            let err = (f64::from(*g) - want).abs();
            let scalar = act.apply(*x);
            // Where the scalar path overflows to inf or NaN (x*x*x for |x| of f32::MAX), the
            // register path must agree with it rather than with f64.
            if !scalar.is_finite() {
                assert!(g.is_nan() == scalar.is_nan() && (g.is_nan() || *g == scalar), "{act:?}: x={x} got {g} scalar {scalar}");
                continue;
            }
            assert!(err <= 3e-7 + 4e-7 * want.abs(), "{act:?}: x={x} got {g} want {want}");
        }
        let mut special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
        let scalar = special.map(|x| act.apply(x));
        assert!(crate::kernels::act512::apply_slice(act, &mut special));
        for ((g, s), x) in special.iter().zip(scalar).zip([f32::NAN, f32::INFINITY, f32::NEG_INFINITY]) {
            assert!(g.is_nan() == s.is_nan() && (g.is_nan() || *g == s), "{act:?}: x={x} register {g}, scalar {s}");
        }
    }
}

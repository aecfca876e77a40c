//! Observers on known distributions, and their memory bound.
#![allow(clippy::unwrap_used)]

mod common;

use common::Rng;
use kiln_quant::{CalibMethod, Calibrator, Observation, Observer};
use kiln_tensor::Tensor;

/// The empirical quantile of a sorted sample (the smallest value with `q` of the sample at or below it).
fn quantile(sorted: &[f32], q: f64) -> f32 {
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn feed(obs: &mut Observer, xs: &[f32], chunk: usize) {
    for c in xs.chunks(chunk) {
        obs.observe(c);
    }
}

#[test]
fn minmax_is_exact_and_skips_non_finite() {
    let mut o = Observer::new(CalibMethod::MinMax);
    assert_eq!(o.range(), None);
    o.observe(&[0.5, -0.25, f32::NAN]);
    o.observe(&[3.75, f32::INFINITY, -1.5]);
    o.observe(&[2.0]);
    assert_eq!(o.range(), Some((-1.5, 3.75)));
}

#[test]
fn percentile_matches_the_sample_quantile_within_a_bin() {
    let mut rng = Rng::new(7);
    let uniform: Vec<f32> = (0..200_000).map(|_| rng.uniform() as f32 * 2.0 - 1.0).collect();
    let gaussian: Vec<f32> = (0..200_000).map(|_| rng.normal() as f32 * 3.0).collect();
    for (name, xs) in [("uniform", &uniform), ("gaussian", &gaussian)] {
        let peak = xs.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let mut abs: Vec<f32> = xs.iter().map(|x| x.abs()).collect();
        abs.sort_by(f32::total_cmp);
        let mut sorted = xs.clone();
        sorted.sort_by(f32::total_cmp);
        for p in [99.0, 99.99] {
            // Symmetric: the percentile of |x|; the histogram's range is at most 2x the peak.
            let mut o = Observer::new(CalibMethod::Percentile { percentile: p, symmetric: true });
            feed(&mut o, xs, 1000);
            let (lo, hi) = o.range().unwrap();
            let want = quantile(&abs, p / 100.0);
            let bin = 2.0 * peak / 2048.0;
            assert!((hi - want).abs() <= bin + 1e-6, "{name} p{p} symmetric: {hi} vs {want} (bin {bin})");
            assert_eq!(lo, -hi.min(-sorted[0]));
            // Asymmetric: cut (100 - p) / 2 % from each side; the signed histogram's bins are 2x wider.
            let mut o = Observer::new(CalibMethod::Percentile { percentile: p, symmetric: false });
            feed(&mut o, xs, 1000);
            let (lo, hi) = o.range().unwrap();
            let cut = (1.0 - p / 100.0) / 2.0;
            let (want_lo, want_hi) = (quantile(&sorted, cut), quantile(&sorted, 1.0 - cut));
            let bin = 4.0 * peak / 2048.0;
            assert!((hi - want_hi).abs() <= bin + 1e-6, "{name} p{p}: hi {hi} vs {want_hi} (bin {bin})");
            assert!((lo - want_lo).abs() <= bin + 1e-6, "{name} p{p}: lo {lo} vs {want_lo} (bin {bin})");
        }
    }
}

#[test]
fn entropy_cuts_a_heavy_tail_and_keeps_a_uniform_range() {
    let mut rng = Rng::new(11);
    // Laplace(0, 1) with a few far outliers: the KL threshold saturates the tail.
    let mut heavy: Vec<f32> = (0..100_000)
        .map(|_| {
            let u = rng.uniform() - 0.5;
            (-u.signum() * (1.0 - 2.0 * u.abs()).max(1e-12).ln()) as f32
        })
        .collect();
    heavy.extend([40.0, -35.0, 50.0]);
    let mut o = Observer::new(CalibMethod::Entropy { symmetric: true });
    feed(&mut o, &heavy, 4096);
    let (lo, hi) = o.range().unwrap();
    eprintln!("entropy: Laplace(0,1) + outliers to 50 -> threshold {hi}");
    assert!(hi < 0.5 * 50.0 && hi > 3.0, "heavy tail: threshold {hi} should be well below the max 50");
    assert_eq!(lo, -hi);
    // A uniform sample has no tail to cut: the threshold stays near the max.
    let uniform: Vec<f32> = (0..100_000).map(|_| rng.uniform() as f32 * 2.0 - 1.0).collect();
    let mut o = Observer::new(CalibMethod::Entropy { symmetric: true });
    feed(&mut o, &uniform, 4096);
    let (_, hi) = o.range().unwrap();
    assert!(hi > 0.9, "uniform: threshold {hi} should be near 1");
    // Non-negative values (a ReLU output) keep lo at their min.
    let relu: Vec<f32> = uniform.iter().map(|x| x.max(0.0)).collect();
    let mut o = Observer::new(CalibMethod::Entropy { symmetric: false });
    feed(&mut o, &relu, 4096);
    let (lo, hi) = o.range().unwrap();
    assert_eq!(lo, 0.0);
    assert!(hi > 0.9, "relu: threshold {hi}");
}

/// Every observer's memory is the same after 10 and after 10,000 samples (of growing range,
/// so the histograms re-bin many times).
#[test]
fn observer_memory_does_not_grow_with_samples() {
    let observation = Observation { values: vec!["a".into(), "b".into()], excluded: vec![] };
    let methods = [
        CalibMethod::MinMax,
        CalibMethod::Percentile { percentile: 99.99, symmetric: false },
        CalibMethod::Percentile { percentile: 99.9, symmetric: true },
        CalibMethod::Entropy { symmetric: false },
    ];
    for method in methods {
        let mut sizes = Vec::new();
        for samples in [10usize, 10_000] {
            let mut rng = Rng::new(3);
            let mut cal = Calibrator::new(method, &observation);
            let empty = cal.memory_bytes();
            for s in 0..samples {
                let grow = 1.0 + s as f32 / 100.0;
                let t = Tensor::from_vec(vec![4, 64], rng.vec(256, grow)).unwrap();
                cal.observe("a", &t).unwrap();
                cal.observe("b", &t).unwrap();
            }
            assert_eq!(cal.memory_bytes(), empty, "{method}: observers grew while observing");
            sizes.push(cal.memory_bytes());
            let ranges = cal.finish().unwrap();
            assert_eq!(ranges.samples, samples as u64);
        }
        assert_eq!(sizes[0], sizes[1], "{method}: {} bytes after 10 samples, {} after 10,000", sizes[0], sizes[1]);
        eprintln!("{method}: {} bytes for 2 observed values", sizes[0]);
    }
}

#[test]
fn calibrator_errors_name_the_value() {
    let observation = Observation { values: vec!["a".into()], excluded: vec![] };
    let mut cal = Calibrator::new(CalibMethod::MinMax, &observation);
    let err = cal.observe("zz", &Tensor::from_vec(vec![1], vec![1.0f32]).unwrap()).unwrap_err().to_string();
    assert!(err.contains("'zz'") && err.contains("observed: a"), "{err}");
    let err = cal.observe("a", &Tensor::from_vec(vec![1], vec![1i64]).unwrap()).unwrap_err().to_string();
    assert!(err.contains("'a'") && err.contains("i64"), "{err}");
    let err = cal.finish().unwrap_err().to_string();
    assert!(err.contains("'a'") && err.contains("0 tensors"), "{err}");
}

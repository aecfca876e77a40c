//! Interleaved timing: configurations are timed in alternating rounds so that background
//! load (the machine is shared) hits them alike; medians and minimums are reported.

use std::time::{Duration, Instant};

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// Seconds per call: median and minimum over all samples.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
}

/// A labelled closure to time.
pub type Case<'a> = Box<dyn FnMut() + 'a>;

/// Times every closure in `rounds` interleaved rounds, each round giving each closure about
/// `budget / rounds` (at least one call). One warm-up call each first.
pub fn interleaved(budget: Duration, rounds: usize, cases: &mut [Case<'_>]) -> Vec<Stats> {
    for f in cases.iter_mut() {
        f();
    }
    let per = budget.div_f64(rounds.max(1) as f64);
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds.max(1) {
        for (f, s) in cases.iter_mut().zip(samples.iter_mut()) {
            let start = Instant::now();
            loop {
                let t = Instant::now();
                f();
                s.push(t.elapsed().as_secs_f64());
                if start.elapsed() >= per {
                    break;
                }
            }
        }
    }
    samples.into_iter().map(|s| Stats { min: s.iter().copied().fold(f64::INFINITY, f64::min), median: median(s) }).collect()
}

/// Median seconds per call of one closure.
pub fn time_median(budget: Duration, min_reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut samples = Vec::new();
    while samples.len() < min_reps || (start.elapsed() < budget && samples.len() < 1000) {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64());
    }
    median(samples)
}

//! Calibration: one observer per observed value, fed a stream of f32 tensors (one per sample),
//! each in memory independent of the number of samples, and finished into float ranges.

mod entropy;
mod histogram;
mod minmax;
mod percentile;

pub use entropy::{entropy_range, kl_threshold};
pub use histogram::{DEFAULT_BINS, Histogram};
pub use minmax::MinMax;
pub use percentile::percentile_range;

use crate::{Observation, QuantError};
use kiln_tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// How a value's float range is chosen from the samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum CalibMethod {
    /// The exact min and max seen.
    MinMax,
    /// The range holding `percentile`% of the values (e.g. 99.99): of |x| when symmetric,
    /// cutting half the rest from each side otherwise.
    Percentile { percentile: f64, symmetric: bool },
    /// The threshold minimising KL divergence (TensorRT's entropy calibration); `symmetric`
    /// picks 128 levels even for non-negative values (an i8 activation).
    Entropy { symmetric: bool },
}

impl fmt::Display for CalibMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalibMethod::MinMax => f.write_str("minmax"),
            CalibMethod::Percentile { percentile, symmetric } => {
                write!(f, "percentile {percentile}{}", if *symmetric { " symmetric" } else { "" })
            }
            CalibMethod::Entropy { symmetric } => {
                write!(f, "entropy{}", if *symmetric { " symmetric" } else { "" })
            }
        }
    }
}

/// One value's observer; its size does not depend on how many tensors it has seen
/// (a histogram of [`DEFAULT_BINS`] bins for Percentile and Entropy).
#[derive(Clone, Debug)]
pub enum Observer {
    MinMax(MinMax),
    /// Over |x| when symmetric, over x otherwise.
    Percentile {
        hist: Histogram,
        percentile: f64,
    },
    /// Over |x|.
    Entropy {
        hist: Histogram,
        symmetric: bool,
    },
}

impl Observer {
    pub fn new(method: CalibMethod) -> Observer {
        match method {
            CalibMethod::MinMax => Observer::MinMax(MinMax::default()),
            CalibMethod::Percentile { percentile, symmetric } => {
                Observer::Percentile { hist: Histogram::new(DEFAULT_BINS, symmetric), percentile }
            }
            CalibMethod::Entropy { symmetric } => Observer::Entropy { hist: Histogram::new(DEFAULT_BINS, true), symmetric },
        }
    }

    pub fn observe(&mut self, xs: &[f32]) {
        match self {
            Observer::MinMax(o) => o.observe(xs),
            Observer::Percentile { hist, .. } | Observer::Entropy { hist, .. } => hist.add(xs),
        }
    }

    /// The chosen `(lo, hi)`, or None when no finite value was seen.
    pub fn range(&self) -> Option<(f32, f32)> {
        match self {
            Observer::MinMax(o) => o.range(),
            Observer::Percentile { hist, percentile } => percentile_range(hist, *percentile),
            Observer::Entropy { hist, symmetric } => entropy_range(hist, *symmetric),
        }
    }

    /// Bytes this observer holds (inline and on the heap).
    pub fn memory_bytes(&self) -> usize {
        let heap = match self {
            Observer::MinMax(_) => 0,
            Observer::Percentile { hist, .. } | Observer::Entropy { hist, .. } => hist.heap_bytes(),
        };
        std::mem::size_of::<Observer>() + heap
    }
}

/// A float range `[lo, hi]` chosen for one value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub lo: f32,
    pub hi: f32,
}

/// What calibration produced: a range per observed value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ranges {
    pub method: CalibMethod,
    /// Tensors fed per value (the most any value got: the number of samples).
    pub samples: u64,
    pub values: BTreeMap<String, Range>,
}

/// Feeds observed tensors to one observer per value of an [`Observation`].
#[derive(Clone, Debug)]
pub struct Calibrator {
    method: CalibMethod,
    observers: BTreeMap<String, (Observer, u64)>,
}

impl Calibrator {
    pub fn new(method: CalibMethod, observation: &Observation) -> Calibrator {
        let observers = observation.values.iter().map(|v| (v.clone(), (Observer::new(method), 0))).collect();
        Calibrator { method, observers }
    }

    /// Feeds one tensor of `value` (one sample's). Float tensors of any width are read as f32.
    pub fn observe(&mut self, value: &str, t: &Tensor) -> Result<(), QuantError> {
        let Some((obs, count)) = self.observers.get_mut(value) else {
            return Err(crate::observed::not_observed(value, self.observers.keys()));
        };
        obs.observe(&crate::observed::f32_values(value, t)?);
        *count += 1;
        Ok(())
    }

    /// Feeds every `(name, tensor)` pair whose name is observed and skips the rest (the model's
    /// own outputs): what a run of [`crate::with_observed_outputs`]'s model returns.
    pub fn observe_outputs<'a>(&mut self, outputs: impl IntoIterator<Item = (&'a str, &'a Tensor)>) -> Result<(), QuantError> {
        for (name, t) in outputs {
            if self.observers.contains_key(name) {
                self.observe(name, t)?;
            }
        }
        Ok(())
    }

    /// Bytes held by all observers: constant in the number of samples fed.
    pub fn memory_bytes(&self) -> usize {
        self.observers.iter().map(|(k, (o, _))| k.len() + o.memory_bytes()).sum()
    }

    /// The observer of one value (tests, reports).
    pub fn observer(&self, value: &str) -> Option<&Observer> {
        self.observers.get(value).map(|(o, _)| o)
    }

    /// The range of every value; an error names a value that never got a finite value.
    pub fn finish(self) -> Result<Ranges, QuantError> {
        let mut values = BTreeMap::new();
        let mut samples = 0;
        for (name, (obs, count)) in self.observers {
            let Some((lo, hi)) = obs.range() else {
                return Err(QuantError::NoData { value: name, tensors: count });
            };
            samples = samples.max(count);
            values.insert(name, Range { lo, hi });
        }
        Ok(Ranges { method: self.method, samples, values })
    }
}

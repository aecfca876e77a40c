//! Per-channel `max|x|` of the observed activations, streamed one sample at a time.

use crate::{Observation, QuantError};
use kiln_tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What [`ChannelMaxCollector::finish`] produced: per value, `max|x|` of every channel (last
/// axis) over every row of every sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {
    /// Tensors fed per value (the most any value got: the number of samples).
    pub samples: u64,
    pub values: BTreeMap<String, Vec<f32>>,
}

/// One `Vec<f32>` of K maxima per observed value: memory independent of the number of samples.
#[derive(Clone, Debug)]
pub struct ChannelMaxCollector {
    /// Per value: the maxima (empty until the first tensor gives K) and the tensors fed.
    values: BTreeMap<String, (Vec<f32>, u64)>,
}

impl ChannelMaxCollector {
    pub fn new(observation: &Observation) -> ChannelMaxCollector {
        ChannelMaxCollector { values: observation.values.iter().map(|v| (v.clone(), (Vec::new(), 0))).collect() }
    }

    /// Feeds one tensor of `value` (one sample's). Float tensors of any width are read as f32;
    /// NaN and infinities are skipped.
    pub fn observe(&mut self, value: &str, t: &Tensor) -> Result<(), QuantError> {
        let Some((max, count)) = self.values.get_mut(value) else {
            return Err(crate::observed::not_observed(value, self.values.keys()));
        };
        let xs = crate::observed::f32_values(value, t)?;
        let k = t.shape().last().copied().unwrap_or(1);
        if max.is_empty() {
            *max = vec![0.0; k];
        } else if max.len() != k {
            return Err(QuantError::Channels { value: value.to_string(), expected: max.len(), found: k });
        }
        if k > 0 {
            for row in xs.chunks_exact(k) {
                for (m, &x) in max.iter_mut().zip(row) {
                    if x.is_finite() {
                        *m = m.max(x.abs());
                    }
                }
            }
        }
        *count += 1;
        Ok(())
    }

    /// Feeds every `(name, tensor)` pair whose name is observed and skips the rest (the model's
    /// own outputs): what a run of [`crate::with_observed_outputs`]'s model returns.
    pub fn observe_outputs<'a>(&mut self, outputs: impl IntoIterator<Item = (&'a str, &'a Tensor)>) -> Result<(), QuantError> {
        for (name, t) in outputs {
            if self.values.contains_key(name) {
                self.observe(name, t)?;
            }
        }
        Ok(())
    }

    /// Bytes held: the names and K floats per value, constant in the number of samples fed.
    pub fn memory_bytes(&self) -> usize {
        let per = std::mem::size_of::<(String, (Vec<f32>, u64))>();
        self.values.iter().map(|(k, (m, _))| per + k.len() + m.capacity() * std::mem::size_of::<f32>()).sum()
    }

    /// The maxima of every value; an error names a value that was never fed.
    pub fn finish(self) -> Result<ChannelStats, QuantError> {
        let mut values = BTreeMap::new();
        let mut samples = 0;
        for (name, (max, count)) in self.values {
            if count == 0 {
                return Err(QuantError::NoData { value: name, tensors: 0 });
            }
            samples = samples.max(count);
            values.insert(name, max);
        }
        Ok(ChannelStats { samples, values })
    }
}

//! Hessians for GPTQ: `H = 2/n * sum of x x^T` over every row x (the last axis) of every
//! sample of an observed activation, accumulated in f64. One `K x K` sum per value, allocated
//! on its first tensor: memory independent of the number of samples. Consumers of the same
//! activation share it.

use crate::{Observation, QuantError};
use kiln_ir::Model;
use kiln_tensor::{Dim, Tensor};
use std::collections::BTreeMap;

/// One value's accumulated `sum x x^T` (upper triangle filled while collecting).
#[derive(Clone, Debug, PartialEq)]
pub struct Hessian {
    /// K, the row length.
    pub dim: usize,
    /// Rows accumulated (n).
    pub rows: u64,
    /// Rows skipped because they held a NaN or an infinity.
    pub skipped_rows: u64,
    sum: Vec<f64>,
}

impl Hessian {
    fn new(dim: usize) -> Hessian {
        Hessian { dim, rows: 0, skipped_rows: 0, sum: vec![0.0; dim * dim] }
    }

    fn add_rows(&mut self, xs: &[f32]) {
        let k = self.dim;
        let mut row = vec![0.0f64; k];
        for x in xs.chunks_exact(k) {
            if x.iter().any(|v| !v.is_finite()) {
                self.skipped_rows += 1;
                continue;
            }
            row.iter_mut().zip(x).for_each(|(r, &v)| *r = f64::from(v));
            for i in 0..k {
                let xi = row[i];
                if xi != 0.0 {
                    let dst = &mut self.sum[i * k + i..(i + 1) * k];
                    dst.iter_mut().zip(&row[i..]).for_each(|(s, &xj)| *s += xi * xj);
                }
            }
            self.rows += 1;
        }
    }

    /// `2/n * sum x x^T`, full and symmetric, row-major `[K, K]` (all zeros before any row).
    pub fn matrix(&self) -> Vec<f64> {
        let k = self.dim;
        let f = if self.rows == 0 { 0.0 } else { 2.0 / self.rows as f64 };
        let mut h = vec![0.0; k * k];
        for i in 0..k {
            for j in i..k {
                let v = self.sum[i * k + j] * f;
                h[i * k + j] = v;
                h[j * k + i] = v;
            }
        }
        h
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Hessian>() + self.sum.capacity() * std::mem::size_of::<f64>()
    }
}

/// What [`HessianCollector::finish`] gives: a Hessian per observed value.
#[derive(Clone, Debug, PartialEq)]
pub struct Hessians {
    /// Tensors fed per value (the most any value got: the number of samples).
    pub samples: u64,
    pub values: BTreeMap<String, Hessian>,
}

/// Feeds observed activations into one [`Hessian`] per value of a [`crate::plan_weight_only`]
/// observation, as [`crate::Calibrator`] does for ranges.
#[derive(Clone, Debug)]
pub struct HessianCollector {
    /// Per value: the row length the model declares (when known), the sum once allocated,
    /// and the tensors fed.
    values: BTreeMap<String, (Option<usize>, Option<Hessian>, u64)>,
}

impl HessianCollector {
    pub fn new(observation: &Observation, model: &Model) -> HessianCollector {
        let g = &model.graph;
        let declared = |name: &str| {
            let shape = g.value_by_name(name).and_then(|v| g.value(v).shape.clone())?;
            match shape.0.last() {
                Some(Dim::Known(k)) => Some(*k),
                _ => None,
            }
        };
        let values = observation.values.iter().map(|v| (v.clone(), (declared(v), None, 0))).collect();
        HessianCollector { values }
    }

    /// Feeds one tensor of `value` (one sample's). Float tensors of any width are read as f32.
    pub fn observe(&mut self, value: &str, t: &Tensor) -> Result<(), QuantError> {
        let Some((declared, hessian, count)) = self.values.get_mut(value) else {
            return Err(crate::observed::not_observed(value, self.values.keys()));
        };
        let xs = crate::observed::f32_values(value, t)?;
        let found = t.shape().last().copied().unwrap_or(1);
        let expected = hessian.as_ref().map(|h| h.dim).or(*declared).unwrap_or(found);
        if found != expected || expected == 0 {
            return Err(QuantError::HessianShape { value: value.to_string(), expected, found });
        }
        hessian.get_or_insert_with(|| Hessian::new(expected)).add_rows(&xs);
        *count += 1;
        Ok(())
    }

    /// Feeds every `(name, tensor)` pair whose name is observed and skips the rest: what a run
    /// of [`crate::with_observed_outputs`]'s model returns.
    pub fn observe_outputs<'a>(&mut self, outputs: impl IntoIterator<Item = (&'a str, &'a Tensor)>) -> Result<(), QuantError> {
        for (name, t) in outputs {
            if self.values.contains_key(name) {
                self.observe(name, t)?;
            }
        }
        Ok(())
    }

    /// Bytes held: `K * K * 8` per value once it has seen a tensor, whatever the sample count.
    pub fn memory_bytes(&self) -> usize {
        self.values.iter().map(|(k, (_, h, _))| k.len() + h.as_ref().map_or(0, Hessian::memory_bytes)).sum()
    }

    /// The Hessian of every value; an error names a value that got no finite row.
    pub fn finish(self) -> Result<Hessians, QuantError> {
        let mut values = BTreeMap::new();
        let mut samples = 0;
        for (name, (_, h, count)) in self.values {
            match h {
                Some(h) if h.rows > 0 => {
                    samples = samples.max(count);
                    values.insert(name, h);
                }
                _ => return Err(QuantError::NoRows { value: name, tensors: count }),
            }
        }
        Ok(Hessians { samples, values })
    }
}

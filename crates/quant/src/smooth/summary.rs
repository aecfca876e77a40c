//! What smoothing did, per group: serialisable for the report, printable for the CLI.

use super::Fold;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The model metadata key under which [`super::smooth`] records [`SmoothSummary::headline`].
pub const SMOOTH_METADATA_KEY: &str = "kiln.smoothquant";

/// One smoothed activation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SmoothedGroup {
    pub activation: String,
    pub channels: usize,
    pub consumers: Vec<String>,
    pub fold: Fold,
    /// `max_j max|X_j| / median_j max|X_j|` before and after smoothing (1 = flat channels).
    pub ratio_before: f32,
    pub ratio_after: f32,
    /// The smallest and largest factor `s_j`.
    pub factor_min: f32,
    pub factor_max: f32,
}

/// A MatMul / Gemm left unsmoothed, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkippedNode {
    pub node: String,
    pub reason: String,
}

/// The whole rewrite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SmoothSummary {
    pub alpha: f32,
    /// Calibration samples the channel maxima came from.
    pub samples: u64,
    pub groups: Vec<SmoothedGroup>,
    pub skipped: Vec<SkippedNode>,
}

impl SmoothSummary {
    /// One line: alpha, groups and nodes smoothed, nodes skipped.
    pub fn headline(&self) -> String {
        let nodes: usize = self.groups.iter().map(|g| g.consumers.len()).sum();
        let inserted = self.groups.iter().filter(|g| matches!(g.fold, Fold::InsertMul { .. })).count();
        let extra = if inserted > 0 { format!(" ({inserted} with an inserted Mul)") } else { String::new() };
        format!(
            "SmoothQuant alpha {}: {} activations smoothed{extra} for {nodes} MatMul/Gemm nodes over {} samples, {} nodes skipped",
            self.alpha,
            self.groups.len(),
            self.samples,
            self.skipped.len()
        )
    }
}

/// `max / median` of per-channel maxima (median floored at the smallest positive f32).
pub(crate) fn outlier_ratio(max: &[f32]) -> f32 {
    let mut v: Vec<f32> = max.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 1.0;
    }
    v.sort_by(f32::total_cmp);
    let median = v[v.len() / 2].max(f32::MIN_POSITIVE);
    let top = v[v.len() - 1];
    if top == 0.0 { 1.0 } else { (f64::from(top) / f64::from(median)).min(f64::from(f32::MAX)) as f32 }
}

impl fmt::Display for SmoothSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline())?;
        if !self.groups.is_empty() {
            writeln!(f, "  {:<24} {:>5}  {:>17}  {:>15}  {:<28} consumers", "activation", "K", "max/median |X|", "s range", "fold")?;
        }
        for g in &self.groups {
            writeln!(
                f,
                "  {:<24} {:>5}  {:>7.1} -> {:>6.1}  {:>6.3}..{:<7.3}  {:<28} {}",
                g.activation,
                g.channels,
                g.ratio_before,
                g.ratio_after,
                g.factor_min,
                g.factor_max,
                g.fold.to_string(),
                g.consumers.join(", ")
            )?;
            if let Fold::InsertMul { reason } = &g.fold {
                writeln!(f, "  {:<24} Mul inserted: {reason}", "")?;
            }
        }
        for s in &self.skipped {
            writeln!(f, "  {:<24} skipped: {}", s.node, s.reason)?;
        }
        Ok(())
    }
}

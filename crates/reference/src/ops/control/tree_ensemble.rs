//! ai.onnx.ml TreeEnsemble (opset 5): each row of X [N, F] walks every tree from its root
//! through branch nodes (x[feature] compared with the split by the node's mode) to a leaf,
//! whose weight is added to its target; trees combine by SUM, AVERAGE, MIN or MAX, then an
//! optional post transform. Output [N, n_targets] in X's type.

use super::common::from_f64;
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

struct Tree {
    modes: Vec<u8>,
    splits: Vec<f64>,
    features: Vec<usize>,
    true_next: Vec<(bool, usize)>,
    false_next: Vec<(bool, usize)>,
    nan_true: Vec<bool>,
    sets: Vec<Vec<f64>>,
    leaf_targets: Vec<usize>,
    leaf_weights: Vec<f64>,
}

fn ints_attr<'c>(ctx: &'c OpCtx, name: &str) -> Result<&'c [i64], OpError> {
    ctx.req_ints(name)
}

fn tensor_attr(ctx: &OpCtx, name: &str) -> Result<Vec<f64>, OpError> {
    match ctx.node.attr_tensor(name) {
        Some(t) => Ok(t.to_f64_vec()?),
        None => bail!("attribute '{name}' is required"),
    }
}

impl Tree {
    fn from_attrs(ctx: &OpCtx, n_features: usize, n_targets: usize) -> Result<Tree, OpError> {
        let modes: Vec<u8> = tensor_attr(ctx, "nodes_modes")?.into_iter().map(|m| m as u8).collect();
        let n = modes.len();
        let splits = tensor_attr(ctx, "nodes_splits")?;
        let features = ints_attr(ctx, "nodes_featureids")?;
        let (tn, tl) = (ints_attr(ctx, "nodes_truenodeids")?, ints_attr(ctx, "nodes_trueleafs")?);
        let (fnode, fl) = (ints_attr(ctx, "nodes_falsenodeids")?, ints_attr(ctx, "nodes_falseleafs")?);
        let leaf_targets = ints_attr(ctx, "leaf_targetids")?;
        let leaf_weights = tensor_attr(ctx, "leaf_weights")?;
        let nan_true: Vec<bool> = match ctx.attr_ints("nodes_missing_value_tracks_true") {
            Some(v) if v.len() == n => v.iter().map(|&b| b != 0).collect(),
            Some(v) => bail!("'nodes_missing_value_tracks_true' has {} entries for {n} nodes", v.len()),
            None => vec![false; n],
        };
        if [splits.len(), features.len(), tn.len(), tl.len(), fnode.len(), fl.len()].iter().any(|&l| l != n) {
            bail!("the nodes_* attributes must all have {n} entries");
        }
        if leaf_targets.len() != leaf_weights.len() {
            bail!("'leaf_targetids' and 'leaf_weights' differ in length");
        }
        if let Some(t) = leaf_targets.iter().find(|&&t| t < 0 || t as usize >= n_targets) {
            bail!("leaf target {t} is out of range for {n_targets} targets");
        }
        if let Some(f) = features.iter().find(|&&f| f < 0 || f as usize >= n_features) {
            bail!("feature id {f} is out of range for {n_features} features");
        }
        let n_leaves = leaf_weights.len();
        let link = |ids: &[i64], leafs: &[i64]| -> Result<Vec<(bool, usize)>, OpError> {
            ids.iter()
                .zip(leafs)
                .map(|(&id, &leaf)| {
                    let limit = if leaf != 0 { n_leaves } else { n };
                    if id < 0 || id as usize >= limit {
                        bail!("node link {id} is out of range ({limit} {})", if leaf != 0 { "leaves" } else { "nodes" });
                    }
                    Ok((leaf != 0, id as usize))
                })
                .collect()
        };
        // Membership sets are NaN-separated, one per BRANCH_MEMBER node in node order.
        let mut sets = vec![Vec::new(); n];
        if modes.contains(&6) {
            let values = tensor_attr(ctx, "membership_values")?;
            let mut groups = values.split(|v| v.is_nan());
            for (i, _) in modes.iter().enumerate().filter(|(_, m)| **m == 6) {
                sets[i] = groups.next().map(<[f64]>::to_vec).unwrap_or_default();
            }
        }
        if let Some(m) = modes.iter().find(|&&m| m > 6) {
            bail!("node mode {m} is not one of 0..=6");
        }
        Ok(Tree {
            true_next: link(tn, tl)?,
            false_next: link(fnode, fl)?,
            features: features.iter().map(|&f| f as usize).collect(),
            leaf_targets: leaf_targets.iter().map(|&t| t as usize).collect(),
            modes,
            splits,
            nan_true,
            sets,
            leaf_weights,
        })
    }

    /// The leaf reached from node `root` by `row`.
    fn leaf(&self, root: usize, row: &[f64]) -> Result<usize, OpError> {
        let mut node = root;
        for _ in 0..=self.modes.len() {
            let x = row[self.features[node]];
            let s = self.splits[node];
            let go_true = if x.is_nan() && self.nan_true[node] {
                true
            } else {
                match self.modes[node] {
                    0 => x <= s,
                    1 => x < s,
                    2 => x >= s,
                    3 => x > s,
                    4 => x == s,
                    5 => x != s,
                    _ => self.sets[node].contains(&x),
                }
            };
            match if go_true { self.true_next[node] } else { self.false_next[node] } {
                (true, leaf) => return Ok(leaf),
                (false, next) => node = next,
            }
        }
        bail!("tree starting at node {root} has a cycle")
    }
}

pub fn tree_ensemble(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = req(inputs, 0)?;
    if !x.dtype().is_float() {
        bail!("TreeEnsemble needs a float input, got {}", x.dtype());
    }
    let (rows, n_features) = match *x.shape() {
        [r, f] => (r, f),
        [f] => (1, f),
        ref s => bail!("TreeEnsemble input must be [N, F], got {s:?}"),
    };
    let n_targets = ctx.req_i("n_targets")?;
    if n_targets < 1 {
        bail!("attribute 'n_targets' must be positive, got {n_targets}");
    }
    let n_targets = n_targets as usize;
    let tree = Tree::from_attrs(ctx, n_features, n_targets)?;
    let roots = ints_attr(ctx, "tree_roots")?;
    if let Some(r) = roots.iter().find(|&&r| r < 0 || r as usize >= tree.modes.len()) {
        bail!("tree root {r} is out of range");
    }
    let aggregate = ctx.attr_i("aggregate_function", 1);
    if !(0..=3).contains(&aggregate) {
        bail!("attribute 'aggregate_function' must be 0..=3, got {aggregate}");
    }
    let post = ctx.attr_i("post_transform", 0);
    let v = x.to_f64_vec()?;
    let mut out = Vec::with_capacity(rows * n_targets);
    for r in 0..rows {
        let row = &v[r * n_features..(r + 1) * n_features];
        let mut acc: Vec<Option<f64>> = vec![None; n_targets];
        for &root in roots {
            let leaf = tree.leaf(root as usize, row)?;
            let (t, w) = (tree.leaf_targets[leaf], tree.leaf_weights[leaf]);
            acc[t] = Some(match (acc[t], aggregate) {
                (None, _) => w,
                (Some(a), 2) => a.min(w),
                (Some(a), 3) => a.max(w),
                (Some(a), _) => a + w,
            });
        }
        let scale = if aggregate == 0 && !roots.is_empty() { 1.0 / roots.len() as f64 } else { 1.0 };
        let scores: Vec<f64> = acc.iter().map(|a| a.unwrap_or(0.0) * scale).collect();
        out.extend(post_transform(post, scores)?);
    }
    Ok(vec![from_f64(x.dtype(), vec![rows, n_targets], &out)?])
}

fn post_transform(kind: i64, s: Vec<f64>) -> Result<Vec<f64>, OpError> {
    Ok(match kind {
        0 => s,
        1 => softmax(&s, false),
        2 => s.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect(),
        3 => softmax(&s, true),
        4 => s.iter().map(|&v| probit(v)).collect(),
        other => bail!("attribute 'post_transform' must be 0..=4, got {other}"),
    })
}

/// Softmax; with `skip_zeros`, zero scores stay zero and take no share.
fn softmax(s: &[f64], skip_zeros: bool) -> Vec<f64> {
    let keep = |v: f64| !skip_zeros || v != 0.0;
    let max = s.iter().copied().filter(|&v| keep(v)).fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|&v| if keep(v) { (v - max).exp() } else { 0.0 }).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|&v| if sum > 0.0 { v / sum } else { 0.0 }).collect()
}

/// The standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9).
pub(crate) fn probit(p: f64) -> f64 {
    const A: [f64; 6] =
        [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
    const B: [f64; 5] = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] =
        [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    if p.is_nan() || p <= 0.0 || p >= 1.0 {
        return if p == 0.0 {
            f64::NEG_INFINITY
        } else if p == 1.0 {
            f64::INFINITY
        } else {
            f64::NAN
        };
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

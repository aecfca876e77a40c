//! ai.onnx.ml TreeEnsembleClassifier and TreeEnsembleRegressor (opsets 1 and 3; opset 3 adds
//! the `*_as_tensor` forms of the float attributes).
//!
//! Nodes are named by (tree id, node id); a branch node sends a row to its true or false child
//! by comparing x[feature] with its value (BRANCH_LEQ/LT/GTE/GT/EQ/NEQ; a NaN goes to the true
//! child where `nodes_missing_value_tracks_true` says so). Each tree's root is its first node.
//! Leaves carry weights for targets (regressor) or classes (classifier).
//!
//! Regressor: per target, the SUM (default), AVERAGE, MIN or MAX of the leaf weights over the
//! trees, plus `base_values`; [N, n_targets]. As in onnxruntime, a single target uses each
//! leaf's first weight and only the PROBIT post transform.
//!
//! Classifier: class scores are sums of leaf weights plus `base_values`; the label is the
//! best-scoring class. Two-class models follow onnxruntime's rules (see `binary`).
//!
//! Sums are accumulated in f32, tree by tree, as onnxruntime does: the labels rest on
//! comparisons such as "score > 0.5", and a random forest's vote shares land on 0.5 exactly
//! in f32 where an f64 sum of the same weights can lie just above it.

use super::common::{Features, Labels, Pick, Post, SecondClass, argmax, f32_matrix, floats_attr, probit, widen_binary};
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_ir::Attr;
use kiln_tensor::Tensor;
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

struct Forest {
    modes: Vec<Mode>,
    features: Vec<usize>,
    values: Vec<f64>,
    nan_true: Vec<bool>,
    true_next: Vec<usize>,
    false_next: Vec<usize>,
    roots: Vec<usize>,
    /// (target or class, weight) pairs of each leaf node.
    weights: Vec<Vec<(usize, f64)>>,
}

impl Forest {
    /// Reads the nodes_* attributes and the `{prefix}_treeids/nodeids/ids/weights` leaf weights.
    fn from_attrs(ctx: &OpCtx, prefix: &str, n_features: usize, n_out: usize) -> Result<Forest, OpError> {
        let trees = ctx.req_ints("nodes_treeids")?;
        let ids = ctx.req_ints("nodes_nodeids")?;
        let n = trees.len();
        let modes: Vec<Mode> = match ctx.node.attr("nodes_modes").and_then(Attr::as_strings) {
            Some(m) => m.iter().map(|s| mode(s)).collect::<Result<_, _>>()?,
            None => bail!("attribute 'nodes_modes' is required"),
        };
        let features = ctx.req_ints("nodes_featureids")?;
        let values = floats_attr(ctx, "nodes_values")?.unwrap_or_else(|| vec![0.0; n]);
        let tn = ctx.req_ints("nodes_truenodeids")?;
        let fnode = ctx.req_ints("nodes_falsenodeids")?;
        let nan_true: Vec<bool> = match ctx.attr_ints("nodes_missing_value_tracks_true") {
            Some(v) if !v.is_empty() => v.iter().map(|&b| b != 0).collect(),
            _ => vec![false; n],
        };
        if [ids.len(), modes.len(), features.len(), values.len(), tn.len(), fnode.len(), nan_true.len()].iter().any(|&l| l != n) {
            bail!("the nodes_* attributes must all have {n} entries");
        }
        let mut index: HashMap<(i64, i64), usize> = HashMap::with_capacity(n);
        let mut first: BTreeMap<i64, usize> = BTreeMap::new();
        for i in 0..n {
            if index.insert((trees[i], ids[i]), i).is_some() {
                bail!("node ({}, {}) is defined twice", trees[i], ids[i]);
            }
            first.entry(trees[i]).or_insert(i);
        }
        let link = |i: usize, to: i64| -> Result<usize, OpError> {
            index.get(&(trees[i], to)).copied().ok_or_else(|| OpError::Invalid(format!("tree {} has no node {to}", trees[i])))
        };
        let (mut true_next, mut false_next) = (vec![0; n], vec![0; n]);
        for i in 0..n {
            if modes[i] != Mode::Leaf {
                if features[i] < 0 || features[i] as usize >= n_features {
                    bail!("node ({}, {}) reads feature {} of {n_features}", trees[i], ids[i], features[i]);
                }
                true_next[i] = link(i, tn[i])?;
                false_next[i] = link(i, fnode[i])?;
            }
        }
        let w_trees = ctx.req_ints(&format!("{prefix}_treeids"))?;
        let w_nodes = ctx.req_ints(&format!("{prefix}_nodeids"))?;
        let w_ids = ctx.req_ints(&format!("{prefix}_ids"))?;
        let w = floats_attr(ctx, &format!("{prefix}_weights"))?.unwrap_or_default();
        if w_nodes.len() != w_trees.len() || w_ids.len() != w_trees.len() || w.len() != w_trees.len() {
            bail!("the {prefix}_* attributes must all have {} entries", w_trees.len());
        }
        let mut weights = vec![Vec::new(); n];
        for k in 0..w_trees.len() {
            let Some(&i) = index.get(&(w_trees[k], w_nodes[k])) else {
                bail!("{prefix} weight {k} names node ({}, {}), which does not exist", w_trees[k], w_nodes[k]);
            };
            if w_ids[k] < 0 || w_ids[k] as usize >= n_out {
                bail!("{prefix} weight {k} is for output {} of {n_out}", w_ids[k]);
            }
            weights[i].push((w_ids[k] as usize, w[k]));
        }
        Ok(Forest {
            modes,
            features: features.iter().map(|&f| f.max(0) as usize).collect(),
            values,
            nan_true,
            true_next,
            false_next,
            roots: first.into_values().collect(),
            weights,
        })
    }

    /// The leaf that `row` reaches from `root`.
    fn leaf(&self, root: usize, row: &[f64]) -> Result<usize, OpError> {
        let mut i = root;
        for _ in 0..=self.modes.len() {
            let m = self.modes[i];
            if m == Mode::Leaf {
                return Ok(i);
            }
            let (x, v) = (row[self.features[i]], self.values[i]);
            let go_true = (x.is_nan() && self.nan_true[i])
                || match m {
                    Mode::Leq => x <= v,
                    Mode::Lt => x < v,
                    Mode::Gte => x >= v,
                    Mode::Gt => x > v,
                    Mode::Eq => x == v,
                    _ => x != v,
                };
            i = if go_true { self.true_next[i] } else { self.false_next[i] };
        }
        bail!("the tree at node {root} has a cycle")
    }
}

/// a + b in f32 (both are f32 values held as f64).
fn add32(a: f64, b: f64) -> f64 {
    f64::from(a as f32 + b as f32)
}

fn mode(s: &str) -> Result<Mode, OpError> {
    Ok(match s {
        "BRANCH_LEQ" => Mode::Leq,
        "BRANCH_LT" => Mode::Lt,
        "BRANCH_GTE" => Mode::Gte,
        "BRANCH_GT" => Mode::Gt,
        "BRANCH_EQ" => Mode::Eq,
        "BRANCH_NEQ" => Mode::Neq,
        "LEAF" => Mode::Leaf,
        other => bail!("node mode '{other}' is not one of BRANCH_LEQ/LT/GTE/GT/EQ/NEQ or LEAF"),
    })
}

pub fn tree_ensemble_regressor(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = Features::of(req(inputs, 0)?, "TreeEnsembleRegressor")?;
    let n_targets = ctx.attr_i("n_targets", 1);
    if n_targets < 1 {
        bail!("attribute 'n_targets' must be positive, got {n_targets}");
    }
    let n_targets = n_targets as usize;
    super::common::out_size(x.rows, n_targets)?;
    let forest = Forest::from_attrs(ctx, "target", x.cols, n_targets)?;
    let post = Post::of(ctx)?;
    let agg = ctx.attr_s("aggregate_function", "SUM");
    if !matches!(agg, "SUM" | "AVERAGE" | "MIN" | "MAX") {
        bail!("attribute 'aggregate_function' must be SUM, AVERAGE, MIN or MAX, got '{agg}'");
    }
    let base = floats_attr(ctx, "base_values")?.unwrap_or_default();
    let n_trees = forest.roots.len() as f64;
    let mut out = Vec::with_capacity(x.rows * n_targets);
    for r in 0..x.rows {
        let row = x.row(r);
        let mut acc: Vec<Option<f64>> = vec![None; n_targets];
        for &root in &forest.roots {
            let leaf = forest.leaf(root, row)?;
            // A single target takes each leaf's first weight, whatever target it names.
            let ws = &forest.weights[leaf];
            let ws = if n_targets == 1 { &ws[..ws.len().min(1)] } else { &ws[..] };
            for &(t, w) in ws {
                let t = if n_targets == 1 { 0 } else { t };
                acc[t] = Some(match (acc[t], agg) {
                    (None, _) => w,
                    (Some(a), "MIN") => a.min(w),
                    (Some(a), "MAX") => a.max(w),
                    (Some(a), _) => add32(a, w),
                });
            }
        }
        let mut s: Vec<f64> = acc.iter().map(|a| a.unwrap_or(0.0)).collect();
        if agg == "AVERAGE" {
            s.iter_mut().for_each(|v| *v = f64::from(*v as f32 / n_trees as f32));
        }
        if n_targets == 1 {
            s[0] = add32(s[0], if base.len() == 1 { base[0] } else { 0.0 });
            if post == Post::Probit {
                s[0] = probit(s[0]);
            }
        } else {
            if base.len() == n_targets {
                s.iter_mut().zip(&base).for_each(|(v, b)| *v = add32(*v, *b));
            }
            post.apply(&mut s);
        }
        out.extend(s);
    }
    Ok(vec![f32_matrix(x.rows, n_targets, &out)?])
}

pub fn tree_ensemble_classifier(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = Features::of(req(inputs, 0)?, "TreeEnsembleClassifier")?;
    let labels = Labels::of(ctx);
    let c = labels.len();
    if c < 2 {
        bail!("TreeEnsembleClassifier needs at least two class labels, got {c}");
    }
    let forest = Forest::from_attrs(ctx, "class", x.cols, c)?;
    let post = Post::of(ctx)?;
    let base = floats_attr(ctx, "base_values")?.unwrap_or_default();
    if base.len() > c {
        bail!("'base_values' has {} values for {c} classes", base.len());
    }
    let leaf_classes: std::collections::HashSet<usize> = forest.weights.iter().flatten().map(|&(k, _)| k).collect();
    let all_positive = forest.weights.iter().flatten().all(|&(_, w)| w >= 0.0);
    let binary_case = c == 2 && leaf_classes.len() == 1;
    let mut picks = Vec::with_capacity(x.rows);
    let mut out = Vec::with_capacity(x.rows * c);
    for r in 0..x.rows {
        let row = x.row(r);
        let mut acc: Vec<Option<f64>> = vec![None; c];
        for &root in &forest.roots {
            for &(k, w) in &forest.weights[forest.leaf(root, row)?] {
                acc[k] = Some(add32(acc[k].unwrap_or(0.0), w));
            }
        }
        if c > 2 {
            for (a, b) in acc.iter_mut().zip(&base) {
                *a = Some(add32(a.unwrap_or(0.0), *b));
            }
            // The best class among those that got a score (class 0 when none did).
            let scored: Vec<f64> = acc.iter().map(|a| a.unwrap_or(f64::NEG_INFINITY)).collect();
            picks.push(Pick::Class(argmax(&scored).filter(|&i| acc[i].is_some()).unwrap_or(0)));
            let mut s: Vec<f64> = acc.iter().map(|a| a.unwrap_or(0.0)).collect();
            post.apply(&mut s);
            out.extend(s);
        } else {
            let (pick, s) = binary(&acc, &base, binary_case, all_positive, post);
            // onnxruntime's raw 1 / 0 label is a class index when the labels are strings.
            picks.push(match pick {
                Pick::Raw(b) if labels.is_strings() => Pick::Class(usize::from(b)),
                p => p,
            });
            out.extend(s);
        }
    }
    Ok(vec![labels.output(&picks)?, f32_matrix(x.rows, c, &out)?])
}

/// onnxruntime's two-class rules. With two base values and a class-1 score, the score is
/// s = base[1] + (class-0 sum) and the scores [-s, s]; otherwise base values add per class.
/// Without base values, or when only one class got weights, the decision rests on one score
/// p (class 1's if it has one, else class 0's): when every leaf names the same class
/// ("binary case") the label is class 1 if p > 0.5 (all weights positive) or p > 0, and the
/// scores widen to [1 - p, p] (positive weights) or [-p, p] / logistic; otherwise the label is
/// the raw 1 / 0 by the sign of p.
fn binary(acc: &[Option<f64>], base: &[f64], binary_case: bool, all_positive: bool, post: Post) -> (Pick, Vec<f64>) {
    let (mut s0, mut s1) = (acc[0], acc[1]);
    let mut widen: Option<SecondClass> = None;
    match base.len() {
        2 => {
            if s1.is_some() {
                let v = add32(base[1], s0.unwrap_or(0.0));
                s1 = Some(v);
                s0 = s0.map(|_| -v);
            } else {
                s0 = s0.map(|v| add32(v, base[0]));
                s1 = s1.map(|v| add32(v, base[1]));
            }
        }
        1 => s0 = s0.map(|v| add32(v, base[0])),
        0 => widen = Some(SecondClass::Negate),
        _ => {}
    }
    let single = s1.is_none() && base.len() < 2;
    let p = s1.or(s0).unwrap_or(0.0);
    let pick = if binary_case {
        let (positive, how) = if all_positive { (p > 0.5, SecondClass::Complement) } else { (p > 0.0, SecondClass::Negate) };
        widen = Some(how);
        Pick::Class(usize::from(positive))
    } else {
        Pick::Raw(p > 0.0)
    };
    if single {
        let v = s0.unwrap_or(0.0);
        return (pick, match widen {
            Some(how) => widen_binary(v, post, how).to_vec(),
            None if post == Post::Probit => vec![probit(v), 0.0],
            None => vec![v, 0.0],
        });
    }
    let mut s = vec![s0.unwrap_or(0.0), s1.unwrap_or(0.0)];
    post.apply(&mut s);
    (pick, s)
}

//! ai.onnx.ml SVMClassifier and SVMRegressor (libsvm / liblinear models).
//!
//! Kernels over `kernel_params` [gamma, coef0, degree]: LINEAR x·v, POLY (gamma x·v + coef0)^degree,
//! RBF exp(-gamma |x - v|²), SIGMOID tanh(gamma x·v + coef0).
//!
//! SVMClassifier with support vectors (libsvm): one-vs-one decision values for each class
//! pair (i, j), d = Σ coef[j-1][sv of i]·k + Σ coef[i][sv of j]·k + rho; the pair votes for i
//! when d > 0, and the label is the class with most votes (first on ties). With `prob_a` /
//! `prob_b` the scores are Platt-scaled pairwise probabilities coupled into class
//! probabilities (Wu, Lin & Weng's method, as libsvm does) [N, C]; without, the scores are the
//! decision values [N, C(C-1)/2], a single one widened to [-d, d] (NONE) or [1 - d, d].
//! Without support vectors (liblinear) the scores are X · coefficientsᵀ + rho[0] [N, C].
//!
//! SVMRegressor: Σ coef·k + rho[0] (support vectors) or X·coefficients + rho[0], [N, 1];
//! `one_class` maps the result to ±1.

use super::common::{Features, Labels, Pick, Post, SecondClass, argmax, f32_matrix, logistic, req_floats, widen_binary};
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::Tensor;

#[derive(Clone, Copy)]
enum Kernel {
    Linear,
    Poly { gamma: f64, coef0: f64, degree: f64 },
    Rbf { gamma: f64 },
    Sigmoid { gamma: f64, coef0: f64 },
}

impl Kernel {
    fn of(ctx: &OpCtx) -> Result<Kernel, OpError> {
        let p: Vec<f64> = ctx.attr_floats("kernel_params").unwrap_or_default().iter().map(|&v| f64::from(v)).collect();
        let at = |i: usize| p.get(i).copied().unwrap_or(0.0);
        let (gamma, coef0, degree) = (at(0), at(1), at(2));
        Ok(match ctx.attr_s("kernel_type", "LINEAR") {
            "LINEAR" => Kernel::Linear,
            "POLY" => Kernel::Poly { gamma, coef0, degree },
            "RBF" => Kernel::Rbf { gamma },
            "SIGMOID" => Kernel::Sigmoid { gamma, coef0 },
            other => bail!("attribute 'kernel_type' must be LINEAR, POLY, RBF or SIGMOID, got '{other}'"),
        })
    }

    fn eval(self, x: &[f64], v: &[f64]) -> f64 {
        let dot = || x.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
        match self {
            Kernel::Linear => dot(),
            Kernel::Poly { gamma, coef0, degree } => (gamma * dot() + coef0).powf(degree),
            Kernel::Rbf { gamma } => (-gamma * x.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum::<f64>()).exp(),
            Kernel::Sigmoid { gamma, coef0 } => (gamma * dot() + coef0).tanh(),
        }
    }
}

/// The support vectors as rows of the input's feature count.
fn support_vectors(ctx: &OpCtx, count: usize, cols: usize) -> Result<Vec<f64>, OpError> {
    let sv = super::common::floats_attr(ctx, "support_vectors")?.unwrap_or_default();
    if sv.len() != count * cols {
        bail!("{} support vector values do not make {count} vectors of {cols} features", sv.len());
    }
    Ok(sv)
}

fn rho(ctx: &OpCtx, at_least: usize) -> Result<Vec<f64>, OpError> {
    let rho = req_floats(ctx, "rho")?;
    if rho.len() < at_least {
        bail!("attribute 'rho' has {} values, needs {at_least}", rho.len());
    }
    Ok(rho)
}

pub fn svm_classifier(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = Features::of(req(inputs, 0)?, "SVMClassifier")?;
    let labels = Labels::of(ctx);
    let c = labels.len();
    if c < 2 {
        bail!("SVMClassifier needs at least two class labels, got {c}");
    }
    let kernel = Kernel::of(ctx)?;
    let post = Post::of(ctx)?;
    let coef = req_floats(ctx, "coefficients")?;
    let per_class = ctx.attr_ints("vectors_per_class").unwrap_or_default();
    if per_class.iter().any(|&n| n < 0) {
        bail!("'vectors_per_class' must not be negative");
    }
    let n_sv: usize = per_class.iter().map(|&n| n as usize).sum();
    let mut picks = Vec::with_capacity(x.rows);
    let mut out = Vec::new();

    if n_sv == 0 {
        // liblinear: one linear score per class.
        if coef.len() != c * x.cols {
            bail!("{} coefficients do not make {c} rows of {} features", coef.len(), x.cols);
        }
        let rho = rho(ctx, 1)?;
        let all_positive = coef.iter().all(|&w| w >= 0.0);
        for r in 0..x.rows {
            let mut s: Vec<f64> = coef.chunks(x.cols).map(|w| Kernel::Linear.eval(x.row(r), w) + rho[0]).collect();
            let best = argmax(&s).unwrap_or(0);
            let top = s[best];
            picks.push(if c == 2 && ((all_positive && top >= 0.5) || (!all_positive && top > 0.0)) { Pick::Class(1) } else { Pick::Class(best) });
            post.apply(&mut s);
            out.extend(s);
        }
        return Ok(vec![labels.output(&picks)?, f32_matrix(x.rows, c, &out)?]);
    }

    if per_class.len() != c {
        bail!("'vectors_per_class' has {} entries for {c} classes", per_class.len());
    }
    let sv = support_vectors(ctx, n_sv, x.cols)?;
    if coef.len() != (c - 1) * n_sv {
        bail!("{} coefficients, expected (classes - 1) x vectors = {}", coef.len(), (c - 1) * n_sv);
    }
    let pairs = c * (c - 1) / 2;
    let rho = rho(ctx, pairs)?;
    let prob_a = super::common::floats_attr(ctx, "prob_a")?.unwrap_or_default();
    let prob_b = super::common::floats_attr(ctx, "prob_b")?.unwrap_or_default();
    let proba = !prob_a.is_empty();
    if proba && (prob_a.len() < pairs || prob_b.len() < pairs) {
        bail!("'prob_a' and 'prob_b' need {pairs} values each, got {} and {}", prob_a.len(), prob_b.len());
    }
    let mut start = Vec::with_capacity(c);
    let mut acc = 0;
    for &n in per_class {
        start.push(acc);
        acc += n as usize;
    }
    let width = if proba { c } else if c > 2 { pairs } else { 2 };
    for r in 0..x.rows {
        let row = x.row(r);
        let k: Vec<f64> = sv.chunks(x.cols).map(|v| kernel.eval(row, v)).collect();
        let mut votes = vec![0usize; c];
        let mut decisions = Vec::with_capacity(pairs);
        for i in 0..c {
            for j in i + 1..c {
                let (si, ni, sj, nj) = (start[i], per_class[i] as usize, start[j], per_class[j] as usize);
                let mut d: f64 = (0..ni).map(|m| coef[(j - 1) * n_sv + si + m] * k[si + m]).sum();
                d += (0..nj).map(|m| coef[i * n_sv + sj + m] * k[sj + m]).sum::<f64>();
                d += rho[decisions.len()];
                votes[if d > 0.0 { i } else { j }] += 1;
                decisions.push(d);
            }
        }
        // The first class with the most votes.
        let best = (0..c).fold(0, |b, i| if votes[i] > votes[b] { i } else { b });
        picks.push(Pick::Class(best));
        if proba {
            let mut pairwise = vec![0.0; c * c];
            let mut idx = 0;
            for i in 0..c {
                for j in i + 1..c {
                    let p = (1.0 - logistic(decisions[idx] * prob_a[idx] + prob_b[idx])).clamp(1e-7, 1.0 - 1e-7);
                    pairwise[i * c + j] = p;
                    pairwise[j * c + i] = 1.0 - p;
                    idx += 1;
                }
            }
            let mut p = couple(c, &pairwise);
            post.apply(&mut p);
            out.extend(p);
        } else if c == 2 {
            let how = if post == Post::None { SecondClass::Negate } else { SecondClass::Complement };
            out.extend(widen_binary(decisions[0], post, how));
        } else {
            post.apply(&mut decisions);
            out.extend(decisions);
        }
    }
    Ok(vec![labels.output(&picks)?, f32_matrix(x.rows, width, &out)?])
}

/// Class probabilities from pairwise ones, r[i][j] = P(i | i or j): the fixed-point method of
/// Wu, Lin and Weng (2004), as in libsvm, at most 100 rounds, stopping at max error < 0.005 / k.
fn couple(k: usize, r: &[f64]) -> Vec<f64> {
    let mut q = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            if i != j {
                q[i * k + i] += r[j * k + i] * r[j * k + i];
                q[i * k + j] = -r[j * k + i] * r[i * k + j];
            }
        }
    }
    let mut p = vec![1.0 / k as f64; k];
    let mut qp = vec![0.0; k];
    let eps = 0.005 / k as f64;
    for _ in 0..100 {
        let mut pqp = 0.0;
        for i in 0..k {
            qp[i] = (0..k).map(|j| q[i * k + j] * p[j]).sum();
            pqp += p[i] * qp[i];
        }
        if qp.iter().all(|&v| (v - pqp).abs() < eps) {
            break;
        }
        for i in 0..k {
            let diff = (-qp[i] + pqp) / q[i * k + i];
            p[i] += diff;
            pqp = (pqp + diff * (diff * q[i * k + i] + 2.0 * qp[i])) / (1.0 + diff) / (1.0 + diff);
            for j in 0..k {
                qp[j] = (qp[j] + diff * q[i * k + j]) / (1.0 + diff);
                p[j] /= 1.0 + diff;
            }
        }
    }
    p
}

pub fn svm_regressor(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = Features::of(req(inputs, 0)?, "SVMRegressor")?;
    let coef = req_floats(ctx, "coefficients")?;
    let rho = rho(ctx, 1)?;
    let n_sv = ctx.attr_i("n_supports", 0);
    if n_sv < 0 {
        bail!("attribute 'n_supports' must not be negative, got {n_sv}");
    }
    let n_sv = n_sv as usize;
    let one_class = ctx.attr_i("one_class", 0) != 0;
    let mut out = Vec::with_capacity(x.rows);
    if n_sv > 0 {
        let kernel = Kernel::of(ctx)?;
        let sv = support_vectors(ctx, n_sv, x.cols)?;
        if coef.len() != n_sv {
            bail!("{} coefficients for {n_sv} support vectors", coef.len());
        }
        for r in 0..x.rows {
            let row = x.row(r);
            out.push(sv.chunks(x.cols).zip(&coef).map(|(v, w)| w * kernel.eval(row, v)).sum::<f64>() + rho[0]);
        }
    } else {
        if coef.len() != x.cols {
            bail!("{} coefficients for {} features", coef.len(), x.cols);
        }
        for r in 0..x.rows {
            out.push(Kernel::Linear.eval(x.row(r), &coef) + rho[0]);
        }
    }
    if one_class {
        out.iter_mut().for_each(|v| *v = if *v > 0.0 { 1.0 } else { -1.0 });
    }
    Ok(vec![f32_matrix(x.rows, 1, &out)?])
}

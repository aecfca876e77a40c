//! What RNN, GRU and LSTM share: reading X/W/R/B/sequence_lens/initial states in either
//! layout, activations, directions, and running a cell over each sequence.

use super::common::{floats, from_f64};
use crate::util::{opt, req};
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{DType, Tensor};

/// An activation function with its alpha/beta.
#[derive(Clone, Copy, Debug)]
pub enum Act {
    Relu,
    Tanh,
    Sigmoid,
    Affine(f64, f64),
    LeakyRelu(f64),
    ThresholdedRelu(f64),
    ScaledTanh(f64, f64),
    HardSigmoid(f64, f64),
    Elu(f64),
    Softsign,
    Softplus,
}

impl Act {
    fn parse(name: &str, alpha: Option<f64>, beta: Option<f64>) -> Result<Act, OpError> {
        let a = |d: f64| alpha.unwrap_or(d);
        let b = |d: f64| beta.unwrap_or(d);
        Ok(match name.to_ascii_lowercase().as_str() {
            "relu" => Act::Relu,
            "tanh" => Act::Tanh,
            "sigmoid" => Act::Sigmoid,
            "affine" => Act::Affine(a(1.0), b(0.0)),
            "leakyrelu" => Act::LeakyRelu(a(0.01)),
            "thresholdedrelu" => Act::ThresholdedRelu(a(1.0)),
            "scaledtanh" => Act::ScaledTanh(a(1.0), b(1.0)),
            "hardsigmoid" => Act::HardSigmoid(a(0.2), b(0.5)),
            "elu" => Act::Elu(a(1.0)),
            "softsign" => Act::Softsign,
            "softplus" => Act::Softplus,
            other => bail!("unknown activation '{other}'"),
        })
    }

    pub fn apply(self, x: f64) -> f64 {
        match self {
            Act::Relu => x.max(0.0),
            Act::Tanh => x.tanh(),
            Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Act::Affine(a, b) => a * x + b,
            Act::LeakyRelu(a) => if x >= 0.0 { x } else { a * x },
            Act::ThresholdedRelu(a) => if x > a { x } else { 0.0 },
            Act::ScaledTanh(a, b) => a * (b * x).tanh(),
            Act::HardSigmoid(a, b) => (a * x + b).clamp(0.0, 1.0),
            Act::Elu(a) => if x >= 0.0 { x } else { a * (x.exp() - 1.0) },
            Act::Softsign => x / (1.0 + x.abs()),
            Act::Softplus => x.exp().ln_1p(),
        }
    }
}

/// Inputs of a recurrent op, normalised to layout 0 (time-major).
pub struct Seq {
    pub dtype: DType,
    pub layout: bool,
    pub steps: usize,
    pub batch: usize,
    pub input: usize,
    pub hidden: usize,
    pub dirs: usize,
    pub reverse_only: bool,
    /// X as [steps, batch, input].
    pub x: Vec<f64>,
    /// W [dirs, gates * hidden, input], R [dirs, gates * hidden, hidden], B [dirs, 2 * gates * hidden].
    pub w: Vec<f64>,
    pub r: Vec<f64>,
    pub b: Vec<f64>,
    pub lens: Vec<usize>,
    /// Per direction, the op's activations in order (f, g, h).
    pub acts: Vec<Vec<Act>>,
    pub clip: Option<f64>,
}

/// Swaps the first two axes of a [a, b, rest] array.
fn swap01(v: &[f64], a: usize, b: usize, rest: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(v.len());
    for j in 0..b {
        for i in 0..a {
            out.extend_from_slice(&v[(i * b + j) * rest..(i * b + j + 1) * rest]);
        }
    }
    out
}

impl Seq {
    /// Reads inputs 0..=4 and the attributes; `gates` is 1 (RNN), 3 (GRU) or 4 (LSTM);
    /// `default_acts` are the op's activations for one direction.
    pub fn read(ctx: &OpCtx, inputs: &[Option<&Tensor>], gates: usize, default_acts: &[&str]) -> Result<Seq, OpError> {
        let (x, w, r) = (req(inputs, 0)?, req(inputs, 1)?, req(inputs, 2)?);
        let layout = ctx.attr_i("layout", 0) != 0;
        if x.rank() != 3 || w.rank() != 3 || r.rank() != 3 {
            bail!("X, W and R must be 3-D, got {:?}, {:?}, {:?}", x.shape(), w.shape(), r.shape());
        }
        let (steps, batch, input) = if layout {
            (x.shape()[1], x.shape()[0], x.shape()[2])
        } else {
            (x.shape()[0], x.shape()[1], x.shape()[2])
        };
        let dirs = match ctx.attr_s("direction", "forward") {
            "forward" | "reverse" => 1,
            "bidirectional" => 2,
            other => bail!("attribute 'direction' must be forward, reverse or bidirectional, got '{other}'"),
        };
        let reverse_only = ctx.attr_s("direction", "forward") == "reverse";
        let hidden = match ctx.node.attr_int("hidden_size") {
            Some(h) if h > 0 => h as usize,
            Some(h) => bail!("attribute 'hidden_size' must be positive, got {h}"),
            None => r.shape()[2],
        };
        let gh = gates * hidden;
        if w.shape() != [dirs, gh, input] || r.shape() != [dirs, gh, hidden] {
            bail!("W {:?} / R {:?} do not match {dirs} directions, {gates} gates, hidden {hidden}, input {input}", w.shape(), r.shape());
        }
        let mut xv = floats(x, "X")?;
        if layout {
            xv = swap01(&xv, batch, steps, input);
        }
        let b = match opt(inputs, 3) {
            Some(b) if b.shape() == [dirs, 2 * gh] => floats(b, "B")?,
            Some(b) => bail!("B has shape {:?}, expected [{dirs}, {}]", b.shape(), 2 * gh),
            None => vec![0.0; dirs * 2 * gh],
        };
        let lens = match opt(inputs, 4) {
            Some(l) => {
                let v = l.to_i64_vec()?;
                if v.len() != batch || v.iter().any(|&n| n < 0 || n as usize > steps) {
                    bail!("sequence_lens {v:?} must hold {batch} lengths in 0..={steps}");
                }
                v.iter().map(|&n| n as usize).collect()
            }
            None => vec![steps; batch],
        };
        let names: Vec<String> = match ctx.node.attr("activations").and_then(|a| a.as_strings()) {
            Some(v) => v,
            None => default_acts.iter().map(|s| s.to_string()).collect(),
        };
        let per = default_acts.len();
        if !(names.len() == per || names.len() == per * dirs) {
            bail!("attribute 'activations' must hold {} names, got {names:?}", per * dirs);
        }
        let alphas = ctx.attr_floats("activation_alpha").unwrap_or(&[]);
        let betas = ctx.attr_floats("activation_beta").unwrap_or(&[]);
        let mut acts = Vec::with_capacity(dirs);
        for d in 0..dirs {
            let mut v = Vec::with_capacity(per);
            for k in 0..per {
                let i = if names.len() == per { k } else { d * per + k };
                let a = alphas.get(i).map(|&f| f as f64);
                let bt = betas.get(i).map(|&f| f as f64);
                v.push(Act::parse(&names[i], a, bt)?);
            }
            acts.push(v);
        }
        let clip = ctx.node.attr_float("clip").map(|c| c as f64);
        Ok(Seq {
            dtype: x.dtype(),
            layout,
            steps,
            batch,
            input,
            hidden,
            dirs,
            reverse_only,
            x: xv,
            w: floats(w, "W")?,
            r: floats(r, "R")?,
            b,
            lens,
            acts,
            clip,
        })
    }

    /// An initial state input ([dirs, batch, hidden], or [batch, dirs, hidden] in layout 1),
    /// as [dirs, batch, hidden]; zeros when absent.
    pub fn state(&self, t: Option<&Tensor>, what: &str) -> Result<Vec<f64>, OpError> {
        let (d, b, h) = (self.dirs, self.batch, self.hidden);
        let Some(t) = t else { return Ok(vec![0.0; d * b * h]) };
        let want = if self.layout { [b, d, h] } else { [d, b, h] };
        if t.shape() != want {
            bail!("{what} has shape {:?}, expected {want:?}", t.shape());
        }
        let v = floats(t, what)?;
        Ok(if self.layout { swap01(&v, b, d, h) } else { v })
    }

    /// Clips a gate pre-activation when `clip` is set.
    pub fn clip(&self, x: f64) -> f64 {
        match self.clip {
            Some(c) => x.clamp(-c, c),
            None => x,
        }
    }

    /// Runs `cell(dir, x_t, h, c)` over every direction and sequence: the cell updates the
    /// hidden state `h` (and the cell state `c`, LSTM) in place. Returns Y as
    /// [steps, dirs, batch, hidden], the last h and the last c, both [dirs, batch, hidden].
    pub fn run(&self, mut h: Vec<f64>, mut c: Vec<f64>, mut cell: impl FnMut(usize, &[f64], &mut [f64], &mut [f64])) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (s, d, b, hs, is) = (self.steps, self.dirs, self.batch, self.hidden, self.input);
        let mut y = vec![0.0; s * d * b * hs];
        for dir in 0..d {
            let backward = dir == 1 || self.reverse_only;
            for bi in 0..b {
                let len = self.lens[bi];
                let st = (dir * b + bi) * hs;
                let (hh, cc) = (&mut h[st..st + hs], &mut c[st..st + hs]);
                for step in 0..len {
                    let t = if backward { len - 1 - step } else { step };
                    let xt = &self.x[(t * b + bi) * is..(t * b + bi + 1) * is];
                    cell(dir, xt, hh, cc);
                    let o = ((t * d + dir) * b + bi) * hs;
                    y[o..o + hs].copy_from_slice(hh);
                }
            }
        }
        (y, h, c)
    }

    /// Y, Y_h (and Y_c when given) as tensors in the op's layout.
    pub fn outputs(&self, y: Vec<f64>, states: &[Vec<f64>]) -> Result<Vec<Tensor>, OpError> {
        let (s, d, b, h) = (self.steps, self.dirs, self.batch, self.hidden);
        let mut out = Vec::with_capacity(1 + states.len());
        if self.layout {
            // [steps, dirs, batch, h] -> [batch, steps, dirs, h].
            let mut yl = Vec::with_capacity(y.len());
            for bi in 0..b {
                for t in 0..s {
                    for dir in 0..d {
                        let o = ((t * d + dir) * b + bi) * h;
                        yl.extend_from_slice(&y[o..o + h]);
                    }
                }
            }
            out.push(from_f64(self.dtype, vec![b, s, d, h], &yl)?);
            for st in states {
                out.push(from_f64(self.dtype, vec![b, d, h], &swap01(st, d, b, h))?);
            }
        } else {
            out.push(from_f64(self.dtype, vec![s, d, b, h], &y)?);
            for st in states {
                out.push(from_f64(self.dtype, vec![d, b, h], st)?);
            }
        }
        Ok(out)
    }
}

/// `acc[i] += sum_j m[i * cols + j] * v[j]` for the rows of a row-major matrix.
pub fn matvec_add(m: &[f64], cols: usize, v: &[f64], acc: &mut [f64]) {
    for (i, a) in acc.iter_mut().enumerate() {
        *a += m[i * cols..(i + 1) * cols].iter().zip(v).map(|(x, y)| x * y).sum::<f64>();
    }
}

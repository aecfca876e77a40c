//! `Resize` (opset 11+) of f32 images over their last two axes, modes `nearest` and `linear`
//! (no antialiasing), with per-axis index tables computed once per call and the planes split
//! over threads. Coordinates are mapped in f32 as the reference executor (and onnxruntime) do.

use super::{Lowered, constant, dtype_of, step_str};
use kiln_ir::{Graph, Node};
use kiln_target::Step;
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.resize";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Transform {
    HalfPixel,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Rounding: prefer floor, prefer ceil, floor, ceil.
    Nearest(u8),
    Linear,
}

/// A Resize step's mode and coordinate transform, as the CPU kernel supports them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    mode: Mode,
    transform: Transform,
}

impl Settings {
    /// The settings of a `cpu.resize` step, or None for attributes the kernel does not take.
    pub fn of_step(step: &Step) -> Option<Settings> {
        let int = |k: &str| super::step_int(step, k);
        settings(&|k| step_str(step, k).map(String::from), &int, step.attrs.contains_key("axes"))
    }

    /// Linear (two taps per axis) rather than nearest (one).
    pub fn is_linear(&self) -> bool {
        self.mode == Mode::Linear
    }
}

/// Constant scales or sizes of a Resize (one per axis).
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Scales(Vec<f64>),
    Sizes(Vec<i64>),
}

impl Target {
    /// From the step's scales (input 2) and sizes (input 3): exactly one must be non-empty.
    pub fn of_inputs(scales: Option<&Tensor>, sizes: Option<&Tensor>) -> Result<Target, String> {
        match (scales.filter(|t| !t.is_empty()), sizes.filter(|t| !t.is_empty())) {
            (Some(t), None) => Ok(Target::Scales(t.to_f64_vec().map_err(|e| e.to_string())?)),
            (None, Some(t)) => Ok(Target::Sizes(t.to_i64_vec().map_err(|e| e.to_string())?)),
            _ => Err("exactly one of scales and sizes must be given".into()),
        }
    }

    /// The output shape for an input of `shape`, and the (h, w) scales.
    pub fn output(&self, shape: &[usize]) -> Result<(Vec<usize>, [f64; 2]), String> {
        let r = shape.len();
        if r < 2 {
            return Err(format!("X must have rank >= 2, got {shape:?}"));
        }
        let (h, w) = (shape[r - 2], shape[r - 1]);
        let mut out = shape.to_vec();
        match self {
            Target::Scales(v) => {
                if v.len() != r || v[..r - 2].iter().any(|&s| s != 1.0) || v.iter().any(|&s| !(s > 0.0 && s.is_finite())) {
                    return Err(format!("scales {v:?} must be positive, one per axis, and 1 for all but the last two"));
                }
                out[r - 2] = (h as f64 * v[r - 2]).floor() as usize;
                out[r - 1] = (w as f64 * v[r - 1]).floor() as usize;
                Ok((out, [v[r - 2], v[r - 1]]))
            }
            Target::Sizes(v) => {
                let sizes: Vec<usize> = v
                    .iter()
                    .map(|&s| usize::try_from(s))
                    .collect::<Result<_, _>>()
                    .map_err(|_| format!("sizes {v:?} must hold one non-negative size per axis"))?;
                if sizes.len() != r || sizes[..r - 2] != shape[..r - 2] {
                    return Err(format!("sizes {v:?} must keep all but the last two axes of {shape:?}"));
                }
                let scale = [sizes[r - 2] as f64 / h.max(1) as f64, sizes[r - 1] as f64 / w.max(1) as f64];
                Ok((sizes, scale))
            }
        }
    }
}

fn settings(string: &dyn Fn(&str) -> Option<String>, int: &dyn Fn(&str) -> Option<i64>, has_axes: bool) -> Option<Settings> {
    if has_axes || int("antialias").unwrap_or(0) != 0 || string("keep_aspect_ratio_policy").is_some_and(|p| p != "stretch") {
        return None;
    }
    let transform = match string("coordinate_transformation_mode").as_deref().unwrap_or("half_pixel") {
        "half_pixel" => Transform::HalfPixel,
        "pytorch_half_pixel" => Transform::PytorchHalfPixel,
        "align_corners" => Transform::AlignCorners,
        "asymmetric" => Transform::Asymmetric,
        "tf_half_pixel_for_nn" => Transform::TfHalfPixelForNn,
        _ => return None,
    };
    let mode = match string("mode").as_deref().unwrap_or("nearest") {
        "nearest" => Mode::Nearest(match string("nearest_mode").as_deref().unwrap_or("round_prefer_floor") {
            "round_prefer_floor" => 0,
            "round_prefer_ceil" => 1,
            "floor" => 2,
            "ceil" => 3,
            _ => return None,
        }),
        "linear" => Mode::Linear,
        _ => return None,
    };
    Some(Settings { mode, transform })
}

pub fn lower(g: &Graph, node: &Node) -> Option<Lowered> {
    let s = settings(&|k| node.attr_str(k).map(String::from), &|k| node.attr_int(k), node.attrs.contains_key("axes"));
    if s.is_none() || node.opset < 11 || dtype_of(g, node, 0) != Some(DType::F32) {
        return None;
    }
    // Scales or sizes must be constants that leave every axis but the last two alone.
    let leading_kept = |v: &[f64]| v.len() >= 2 && v[..v.len() - 2].iter().all(|&s| s == 1.0);
    let ok = match (constant(g, node, 2, DType::F32).filter(|t| !t.is_empty()), constant(g, node, 3, DType::I64)) {
        (Some(scales), None) => scales.to_f64_vec().ok().is_some_and(|v| leading_kept(&v)),
        (None, Some(sizes)) => {
            let x = g.value(node.inputs[0]?).shape.as_ref()?;
            let sizes = sizes.to_i64_vec().ok()?;
            sizes.len() == x.0.len()
                && sizes.len() >= 2
                && x.0.iter().zip(&sizes).take(sizes.len() - 2).all(|(d, &s)| d.known() == usize::try_from(s).ok())
        }
        _ => false,
    };
    ok.then(|| Lowered { kernel: KERNEL, variant: "default".into() })
}

pub struct ResizeStep {
    s: Settings,
}

impl ResizeStep {
    pub fn load(step: &Step) -> Result<ResizeStep, String> {
        Ok(ResizeStep { s: Settings::of_step(step).ok_or("unsupported Resize attributes")? })
    }

    /// The output comes from `pool`: every output pixel is written.
    pub fn run(&mut self, inputs: &[Option<&Tensor>], pool: &mut crate::exec::Pool) -> Result<Tensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input X is missing")?;
        let r = x.rank();
        if r < 2 {
            return Err(format!("X must have rank >= 2, got {:?}", x.shape()));
        }
        let (h, w) = (x.shape()[r - 2], x.shape()[r - 1]);
        let target = Target::of_inputs(inputs.get(2).copied().flatten(), inputs.get(3).copied().flatten())?;
        let (shape, scale) = target.output(x.shape())?;
        let out_hw = [shape[r - 2], shape[r - 1]];
        let ys = taps(self.s, h, out_hw[0], scale[0]);
        let xs = taps(self.s, w, out_hw[1], scale[1]);
        let src = x.as_slice::<f32>().map_err(|e| e.to_string())?;
        let planes = src.len().checked_div(h * w).unwrap_or(0);
        let plane_out = out_hw[0] * out_hw[1];
        let mut out = pool.take(planes * plane_out);
        if plane_out > 0 && planes > 0 {
            let nearest = matches!(self.s.mode, Mode::Nearest(_));
            let one = |(p, dst): (usize, &mut [f32])| {
                let plane = &src[p * h * w..][..h * w];
                if nearest {
                    // A gather per element; an output row that reads the same input row as
                    // the one above it is a copy of it.
                    let ow = out_hw[1];
                    for oy in 0..out_hw[0] {
                        let (done, rest) = dst.split_at_mut(oy * ow);
                        let row = &mut rest[..ow];
                        if oy > 0 && ys[oy].0 == ys[oy - 1].0 {
                            row.copy_from_slice(&done[(oy - 1) * ow..]);
                        } else {
                            let r0 = &plane[ys[oy].0 * w..][..w];
                            row.iter_mut().zip(&xs).for_each(|(o, t)| *o = r0[t.0]);
                        }
                    }
                    return;
                }
                for (oy, row) in dst.chunks_exact_mut(out_hw[1]).enumerate() {
                    let (y0, y1, wy) = ys[oy];
                    let (r0, r1) = (&plane[y0 * w..][..w], &plane[y1 * w..][..w]);
                    for (o, &(x0, x1, wx)) in row.iter_mut().zip(&xs) {
                        let top = r0[x0] + (r0[x1] - r0[x0]) * wx;
                        let bottom = r1[x0] + (r1[x1] - r1[x0]) * wx;
                        *o = top + (bottom - top) * wy;
                    }
                }
            };
            if out.len() >= 1 << 15 {
                crate::par::chunks(&mut out, plane_out, crate::par::ALL, |i, c| one((i, c)));
            } else {
                out.chunks_mut(plane_out).enumerate().for_each(one);
            }
        }
        Tensor::from_vec(shape, out).map_err(|e| e.to_string())
    }
}

/// For each output position: the two input positions it reads and the weight of the second
/// (nearest: one position twice, weight 0). The wgpu target's Resize uses the same taps.
pub fn taps(s: Settings, input: usize, output: usize, scale: f64) -> Vec<(usize, usize, f32)> {
    let last = input.saturating_sub(1);
    let exact = scale * input as f64;
    let resized = if (exact - output as f64).abs() < 1e-9 { output as f32 } else { exact as f32 };
    let (sc, len_in) = (scale as f32, input as f32);
    (0..output)
        .map(|o| {
            let x = o as f32;
            let v = match s.transform {
                Transform::HalfPixel => (x + 0.5) / sc - 0.5,
                Transform::PytorchHalfPixel if output > 1 => (x + 0.5) / sc - 0.5,
                Transform::PytorchHalfPixel => 0.0,
                Transform::AlignCorners if output > 1 => x * (len_in - 1.0) / (resized - 1.0),
                Transform::AlignCorners => 0.0,
                Transform::Asymmetric => x / sc,
                Transform::TfHalfPixelForNn => (x + 0.5) / sc,
            };
            let v = f64::from(v);
            let clamp = |i: f64| i.clamp(0.0, last as f64) as usize;
            match s.mode {
                Mode::Nearest(rounding) => {
                    let half = v.fract().abs() == 0.5;
                    let i = match rounding {
                        0 if half => v.floor(),
                        1 if half => v.ceil(),
                        0 | 1 => v.round(),
                        2 => v.floor(),
                        _ => v.ceil(),
                    };
                    (clamp(i), clamp(i), 0.0)
                }
                Mode::Linear => {
                    let i0 = v.floor();
                    (clamp(i0), clamp(i0 + 1.0), (v - i0) as f32)
                }
            }
        })
        .collect()
}

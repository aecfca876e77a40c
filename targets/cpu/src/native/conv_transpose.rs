//! `ConvTranspose` (2-D, f32, constant weights): per image and group one GEMM
//! `cols = W^T X` (`[C_out/g * kh * kw, H * W]`), then col2im adds every column into the
//! output window it belongs to, channels over threads, bias first.

use super::{Dims, Lowered, bound_shape, constant, dtype_of, filler, pick, step_int, step_ints, step_str, tune};
use crate::kernels::{Bias, GemmParams, GemmSpec, gemm_candidates, sgemm};
use kiln_ir::{Graph, Node};
use kiln_target::{Step, TargetError, Tuner};
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.conv_transpose";

#[derive(Clone, Debug, PartialEq)]
struct Geometry {
    strides: [usize; 2],
    dilations: [usize; 2],
    /// top, left, bottom, right.
    pads: [usize; 4],
    output_padding: [usize; 2],
    groups: usize,
}

fn geometry(
    ints: &dyn Fn(&str) -> Option<Vec<i64>>,
    int: &dyn Fn(&str) -> Option<i64>,
    auto_pad: Option<&str>,
    has_output_shape: bool,
) -> Option<Geometry> {
    if has_output_shape || !matches!(auto_pad, None | Some("NOTSET") | Some("VALID")) {
        return None; // sizes chosen from the output: left to the reference kernel
    }
    let list = |name: &str, len: usize, default: i64, min: i64| -> Option<Vec<usize>> {
        let v = ints(name).unwrap_or_else(|| vec![default; len]);
        (v.len() == len && v.iter().all(|&x| x >= min)).then(|| v.iter().map(|&x| x as usize).collect())
    };
    let (s, d, p, o) = (list("strides", 2, 1, 1)?, list("dilations", 2, 1, 1)?, list("pads", 4, 0, 0)?, list("output_padding", 2, 0, 0)?);
    let groups = usize::try_from(int("group").unwrap_or(1)).ok().filter(|&g| g >= 1)?;
    Some(Geometry { strides: [s[0], s[1]], dilations: [d[0], d[1]], pads: [p[0], p[1], p[2], p[3]], output_padding: [o[0], o[1]], groups })
}

/// Output height and width for input `[h, w]` and kernel `[kh, kw]`.
fn out_hw(geo: &Geometry, hw: [usize; 2], k: [usize; 2]) -> Option<[usize; 2]> {
    let one = |i: usize| -> Option<usize> {
        let full = geo.strides[i] * hw[i].checked_sub(1)? + geo.output_padding[i] + (k[i] - 1) * geo.dilations[i] + 1;
        full.checked_sub(geo.pads[i] + geo.pads[i + 2])
    };
    Some([one(0)?, one(1)?])
}

pub fn lower(g: &Graph, node: &Node, dims: &Dims, tuner: &mut Tuner) -> Result<Option<Lowered>, TargetError> {
    if dtype_of(g, node, 0) != Some(DType::F32) {
        return Ok(None);
    }
    let Some(w) = constant(g, node, 1, DType::F32).filter(|w| w.rank() == 4) else { return Ok(None) };
    let geo = geometry(
        &|k| node.attr_ints(k).map(<[i64]>::to_vec),
        &|k| node.attr_int(k),
        node.attr_str("auto_pad"),
        node.attrs.contains_key("output_shape"),
    );
    let Some(geo) = geo else { return Ok(None) };
    if !w.shape()[0].is_multiple_of(geo.groups)
        || node.attr_ints("kernel_shape").is_some_and(|k| k != [w.shape()[2] as i64, w.shape()[3] as i64])
    {
        return Ok(None);
    }
    let c_out = w.shape()[1] * geo.groups;
    if let Some(v) = node.inputs.get(2).copied().flatten()
        && !g.initializers.get(&v).is_some_and(|b| b.dtype() == DType::F32 && b.len() == c_out)
    {
        return Ok(None);
    }
    let variant = match bound_shape(g, node, 0, dims) {
        Some(x) if x.len() == 4 && x[1] == w.shape()[0] => {
            let spec = gemm_spec(w.shape(), &geo, x[2] * x[3]);
            let cands = gemm_candidates(&spec, crate::device::cores());
            let names: Vec<String> = cands.iter().map(|c| format!("{c:?}")).collect();
            let (a, b) = (filler(spec.m * spec.k), filler(spec.k * spec.n));
            let mut c = vec![0f32; spec.m * spec.n];
            let problem = format!("m={},k={},n={},trans_a", spec.m, spec.k, spec.n);
            tune(tuner, KERNEL, problem, &names, |i| sgemm(&spec, &a, &b, Bias::None, &mut c, &cands[i]).map_err(|e| e.to_string()))?
        }
        _ => "default".into(),
    };
    Ok(Some(Lowered { kernel: KERNEL, variant }))
}

/// The per-group GEMM: A = W_g stored `[C_in/g, C_out/g * kh * kw]` (transposed), B = X_g.
fn gemm_spec(w: &[usize], geo: &Geometry, hw: usize) -> GemmSpec {
    GemmSpec::new(w[1] * w[2] * w[3], hw, w[0] / geo.groups).trans(true, false)
}

pub struct ConvTransposeStep {
    geo: Geometry,
    w: Tensor,
    bias: Option<Vec<f32>>,
}

impl ConvTransposeStep {
    pub fn load(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Result<ConvTransposeStep, String> {
        let geo =
            geometry(&|k| step_ints(step, k), &|k| step_int(step, k), step_str(step, "auto_pad"), step.attrs.contains_key("output_shape"))
                .ok_or("unsupported ConvTranspose attributes")?;
        let w = step.inputs.get(1).copied().flatten().and_then(weight).ok_or("weights are not a constant")?;
        if w.rank() != 4 || !w.shape()[0].is_multiple_of(geo.groups) {
            return Err(format!("weights of shape {:?} do not fit {} groups", w.shape(), geo.groups));
        }
        let bias = match step.inputs.get(2).copied().flatten() {
            None => None,
            Some(v) => Some(weight(v).ok_or("bias is not a constant")?.into_vec::<f32>().map_err(|e| e.to_string())?),
        };
        Ok(ConvTransposeStep { geo, w, bias })
    }

    /// The output and the column buffer come from `pool` (every output element is written).
    pub fn run(&mut self, inputs: &[Option<&Tensor>], variant: &str, pool: &mut crate::exec::Pool) -> Result<Tensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input X is missing")?;
        let ws = self.w.shape();
        let (g, cin_g, cout_g, kh, kw) = (self.geo.groups, ws[0] / self.geo.groups, ws[1], ws[2], ws[3]);
        let &[n, c, h, wd] = x.shape() else { return Err(format!("X must be 4-D, got {:?}", x.shape())) };
        if c != ws[0] {
            return Err(format!("X has {c} channels, the weights expect {}", ws[0]));
        }
        let [oh, ow] = out_hw(&self.geo, [h, wd], [kh, kw]).ok_or_else(|| format!("input {h}x{wd} is too small for this ConvTranspose"))?;
        let spec = gemm_spec(ws, &self.geo, h * wd);
        let params: GemmParams = pick(&gemm_candidates(&spec, crate::device::cores()), variant).ok_or("no GEMM candidate")?;
        let (xs, w) = (x.as_slice::<f32>().map_err(|e| e.to_string())?, self.w.as_slice::<f32>().map_err(|e| e.to_string())?);
        let c_out = cout_g * g;
        let mut out = pool.take(n * c_out * oh * ow);
        let mut cols = pool.take(spec.m * spec.n);
        for b in 0..n {
            for gi in 0..g {
                let xg = &xs[(b * c + gi * cin_g) * h * wd..][..cin_g * h * wd];
                let wg = &w[gi * cin_g * cout_g * kh * kw..][..cin_g * cout_g * kh * kw];
                sgemm(&spec, wg, xg, Bias::None, &mut cols, &params).map_err(|e| e.to_string())?;
                let dst = &mut out[(b * c_out + gi * cout_g) * oh * ow..][..cout_g * oh * ow];
                let bias = self.bias.as_deref().map(|bv| &bv[gi * cout_g..][..cout_g]);
                col2im(&cols, dst, bias, [h, wd], [oh, ow], [kh, kw], &self.geo, params.threads > 1);
            }
        }
        if let Ok(t) = Tensor::from_vec(vec![cols.len()], cols) {
            pool.give(t);
        }
        Tensor::from_vec(vec![n, c_out, oh, ow], out).map_err(|e| e.to_string())
    }
}

/// Adds every column of `cols` (`[cout * kh * kw, h * w]`) into its place in `dst`
/// (`[cout, oh, ow]`), after filling each channel with its bias. When the windows tile the
/// output exactly (stride = kernel, no dilation, padding or output padding: an upsampling
/// layer), each output element is written once instead.
#[allow(clippy::too_many_arguments)]
fn col2im(
    cols: &[f32],
    dst: &mut [f32],
    bias: Option<&[f32]>,
    hw: [usize; 2],
    ohw: [usize; 2],
    k: [usize; 2],
    geo: &Geometry,
    parallel: bool,
) {
    let ([h, w], [oh, ow], [kh, kw]) = (hw, ohw, k);
    let tiles = geo.strides == k && geo.dilations == [1, 1] && geo.pads == [0; 4] && [oh, ow] == [h * kh, w * kw];
    let channel = |co: usize, plane: &mut [f32]| {
        let b = bias.map_or(0.0, |b| b[co]);
        if tiles {
            return scatter_tiles(&cols[co * kh * kw * h * w..][..kh * kw * h * w], plane, b, [h, w], [kh, kw]);
        }
        plane.fill(b);
        for ki in 0..kh {
            for kj in 0..kw {
                let col = &cols[((co * kh + ki) * kw + kj) * h * w..][..h * w];
                for ih in 0..h {
                    let y = (ih * geo.strides[0] + ki * geo.dilations[0]) as isize - geo.pads[0] as isize;
                    if y < 0 || y as usize >= oh {
                        continue;
                    }
                    let row = &mut plane[y as usize * ow..][..ow];
                    let src = &col[ih * w..][..w];
                    for (iw, v) in src.iter().enumerate() {
                        let x = (iw * geo.strides[1] + kj * geo.dilations[1]) as isize - geo.pads[1] as isize;
                        if x >= 0 && (x as usize) < ow {
                            row[x as usize] += v;
                        }
                    }
                }
            }
        }
    };
    if parallel {
        crate::par::chunks(dst, oh * ow, crate::par::ALL, channel);
    } else {
        dst.chunks_mut(oh * ow).enumerate().for_each(|(co, p)| channel(co, p));
    }
}

/// Non-overlapping windows: output row `ih kh + ki` interleaves the `kw` columns
/// `(co, ki, 0..kw)` of input row `ih`, plus the bias.
fn scatter_tiles(cols: &[f32], plane: &mut [f32], bias: f32, [h, w]: [usize; 2], [kh, kw]: [usize; 2]) {
    let ow = w * kw;
    for (r, row) in plane.chunks_exact_mut(ow).enumerate() {
        let (ih, ki) = (r / kh, r % kh);
        let src = |kj: usize| &cols[((ki * kw + kj) * h + ih) * w..][..w];
        if kw == 2 {
            for ((pair, &a), &b) in row.chunks_exact_mut(2).zip(src(0)).zip(src(1)) {
                pair[0] = a + bias;
                pair[1] = b + bias;
            }
        } else {
            for kj in 0..kw {
                for (d, &v) in row[kj..].iter_mut().step_by(kw).zip(src(kj)) {
                    *d = v + bias;
                }
            }
        }
    }
}

//! 2-D convolution, f32, NCHW or NHWC, with bias and activation fused into the epilogue.
//!
//! Algorithms: pointwise (1x1, stride 1, no padding: a plain GEMM; NHWC may use weights
//! pre-packed for our microkernels), im2col + GEMM (anything, tiled over output rows so the
//! column buffer stays in cache), implicit GEMM (NCHW, stride 1: B packed straight from a
//! padded copy of the input), direct depthwise (groups == in channels == out channels), direct
//! NHWC for a short reduction (a CNN's first layer). Weights come in ONNX order `[out, in / groups, kh, kw]` and
//! are re-laid out once by [`ConvWeights::new`] for the activation layout.

use super::activation::Activation;
use super::error::{KernelError, check_len, checked_product, invalid};
use super::gemm::{GemmBackend, GemmParams};
use super::isa::Isa;
use super::{depthwise, direct, im2col, implicit};

pub(crate) const KERNEL: &str = "conv2d";

/// Shape and attributes of a 2-D convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dSpec {
    pub batch: usize,
    pub in_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// top, left, bottom, right.
    pub pads: [usize; 4],
    pub groups: usize,
}

impl Conv2dSpec {
    /// Stride 1, dilation 1, no padding, one group.
    pub fn new(batch: usize, in_channels: usize, in_hw: [usize; 2], out_channels: usize, kernel: [usize; 2]) -> Self {
        Conv2dSpec {
            batch,
            in_channels,
            in_h: in_hw[0],
            in_w: in_hw[1],
            out_channels,
            kernel,
            stride: [1, 1],
            dilation: [1, 1],
            pads: [0; 4],
            groups: 1,
        }
    }
    pub fn stride(mut self, s: [usize; 2]) -> Self {
        self.stride = s;
        self
    }
    pub fn dilation(mut self, d: [usize; 2]) -> Self {
        self.dilation = d;
        self
    }
    pub fn pads(mut self, p: [usize; 4]) -> Self {
        self.pads = p;
        self
    }
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }

    /// Output height and width, or an error for inconsistent attributes.
    pub fn out_hw(&self) -> Result<[usize; 2], KernelError> {
        let s = self;
        if s.stride.contains(&0) || s.dilation.contains(&0) || s.kernel.contains(&0) {
            return Err(invalid(KERNEL, "kernel, strides and dilations must be >= 1"));
        }
        if s.groups == 0 || !s.in_channels.is_multiple_of(s.groups) || !s.out_channels.is_multiple_of(s.groups) {
            return Err(invalid(
                KERNEL,
                format!("groups {} must divide in channels {} and out channels {}", s.groups, s.in_channels, s.out_channels),
            ));
        }
        let dim = |i: usize, len: usize, p0: usize, p1: usize| -> Result<usize, KernelError> {
            let span = s.dilation[i] * (s.kernel[i] - 1) + 1;
            let padded = len + p0 + p1;
            if padded < span {
                return Err(invalid(KERNEL, format!("kernel extent {span} exceeds padded input {padded}")));
            }
            Ok((padded - span) / s.stride[i] + 1)
        };
        Ok([dim(0, s.in_h, s.pads[0], s.pads[2])?, dim(1, s.in_w, s.pads[1], s.pads[3])?])
    }

    pub fn in_per_group(&self) -> usize {
        self.in_channels / self.groups.max(1)
    }
    pub fn out_per_group(&self) -> usize {
        self.out_channels / self.groups.max(1)
    }
    /// Reduction length of one output: `in/groups * kh * kw`.
    pub fn k(&self) -> usize {
        self.in_per_group() * self.kernel[0] * self.kernel[1]
    }
    pub fn is_depthwise(&self) -> bool {
        self.groups == self.in_channels && self.out_channels == self.in_channels
    }
    pub fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.pads == [0; 4]
    }
    /// Multiply-adds x 2 (padding taps counted).
    pub fn flops(&self) -> f64 {
        let [oh, ow] = self.out_hw().unwrap_or([0, 0]);
        2.0 * (self.batch * self.out_channels * oh * ow) as f64 * self.k() as f64
    }
    pub fn input_len(&self) -> Result<usize, KernelError> {
        checked_product(KERNEL, &[self.batch, self.in_channels, self.in_h, self.in_w])
    }
    pub fn output_len(&self) -> Result<usize, KernelError> {
        let [oh, ow] = self.out_hw()?;
        checked_product(KERNEL, &[self.batch, self.out_channels, oh, ow])
    }
    pub fn weight_len(&self) -> Result<usize, KernelError> {
        checked_product(KERNEL, &[self.out_channels, self.in_per_group(), self.kernel[0], self.kernel[1]])
    }
}

/// Memory layout of the input and output activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvLayout {
    /// `[batch, channels, h, w]`.
    Nchw,
    /// `[batch, h, w, channels]`.
    Nhwc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvAlgo {
    /// 1x1, stride 1, no padding: one GEMM per group, no column buffer.
    Pointwise,
    /// Column buffer of output-row tiles, then GEMM.
    Im2col,
    /// Direct depthwise loop (groups == in channels == out channels).
    Depthwise,
    /// NCHW, stride 1: one GEMM whose B blocks are packed from a padded input (no column
    /// buffer; always our microkernel backend).
    Implicit,
    /// NHWC, one group, `in * kh * kw` <= 64, 16 to 64 output channels (a multiple of 16):
    /// register-blocked direct loop over four output pixels at a time (no GEMM).
    Direct,
}

/// Tunable choices of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvParams {
    pub algo: ConvAlgo,
    /// Output rows per im2col tile (0 = all rows).
    pub tile_rows: usize,
    /// Threads, GEMM backend and ISA (also the ISA of the depthwise loop).
    pub gemm: GemmParams,
}

/// Candidates for `spec` in `layout`: the first is the default.
pub fn conv_candidates(spec: &Conv2dSpec, layout: ConvLayout, max_threads: usize) -> Vec<ConvParams> {
    let Ok([_, ow]) = spec.out_hw() else { return Vec::new() };
    let mut algos = Vec::new();
    if spec.is_depthwise() {
        algos.push(ConvAlgo::Depthwise);
    }
    if spec.is_pointwise() {
        algos.push(ConvAlgo::Pointwise);
    }
    // NHWC im2col runs one GEMM per group with n = out/groups columns: hopeless for
    // depthwise (n = 1), which has its own loop.
    if !(spec.is_depthwise() && layout == ConvLayout::Nhwc) {
        algos.push(ConvAlgo::Im2col);
    }
    if layout == ConvLayout::Nchw && spec.stride == [1, 1] && !spec.is_pointwise() && !spec.is_depthwise() {
        algos.push(ConvAlgo::Implicit);
    }
    if direct::applies_to(spec, layout) && !spec.is_pointwise() {
        algos.push(ConvAlgo::Direct);
    }
    let tile = default_tile_rows(spec.k(), ow);
    let threads = if spec.flops() < 2.0e6 { 1 } else { max_threads.max(1) };
    let mut out = Vec::new();
    for algo in algos {
        let tiles: &[usize] = if algo == ConvAlgo::Im2col { &[tile, 0, 4 * tile] } else { &[0] };
        for &tile_rows in tiles {
            // Implicit GEMM runs on our microkernels only; an NHWC pointwise convolution (one
            // group) also tries them on its pre-packed weights.
            let backends: &[GemmBackend] = match algo {
                ConvAlgo::Implicit => &[GemmBackend::Micro],
                ConvAlgo::Pointwise if layout == ConvLayout::Nhwc && spec.groups == 1 => &[GemmBackend::Library, GemmBackend::Micro],
                _ => &[GemmBackend::Library],
            };
            for &backend in backends {
                for t in [threads, 1, max_threads.max(1)] {
                    let gemm = GemmParams { backend, threads: t, isa: Isa::best() };
                    let p = ConvParams { algo, tile_rows, gemm };
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
        }
    }
    out
}

/// Output rows per im2col tile: a column buffer of about 1 MiB (`k x rows * ow` floats), but
/// at least 256 pixels so the GEMM is not too thin.
pub(crate) fn default_tile_rows(k: usize, ow: usize) -> usize {
    let ow = ow.max(1);
    (262_144 / (k * ow).max(1)).max(256usize.div_ceil(ow)).max(1)
}

/// Weights re-laid out for one activation layout.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvWeights {
    pub(crate) spec: Conv2dSpec,
    pub(crate) layout: ConvLayout,
    /// Nchw: `[out, in/g * kh * kw]` (ONNX order). Nhwc: per group `[kh * kw * in/g, out/g]`.
    pub(crate) gemm: Vec<f32>,
    /// Depthwise only: Nchw `[c, kh * kw]`, Nhwc `[kh * kw, c]`.
    pub(crate) depthwise: Vec<f32>,
    /// Nhwc pointwise with one group on the micro backend ([`ConvWeights::for_params`]): the
    /// weights packed once into column panels (`gemm` is then empty).
    pub(crate) panels: Option<super::pack::PackedB>,
}

impl ConvWeights {
    /// From ONNX-ordered weights `[out, in / groups, kh, kw]`.
    pub fn new(spec: &Conv2dSpec, layout: ConvLayout, w: &[f32]) -> Result<Self, KernelError> {
        spec.out_hw()?;
        check_len(KERNEL, "weights", w.len(), spec.weight_len()?)?;
        let (g, cin, cout) = (spec.groups, spec.in_per_group(), spec.out_per_group());
        let taps = spec.kernel[0] * spec.kernel[1];
        let gemm = match layout {
            ConvLayout::Nchw => w.to_vec(),
            ConvLayout::Nhwc => {
                let mut out = vec![0.0; w.len()];
                for gi in 0..g {
                    for co in 0..cout {
                        for ci in 0..cin {
                            for t in 0..taps {
                                let src = ((gi * cout + co) * cin + ci) * taps + t;
                                let dst = gi * taps * cin * cout + (t * cin + ci) * cout + co;
                                out[dst] = w[src];
                            }
                        }
                    }
                }
                out
            }
        };
        let depthwise = match (spec.is_depthwise(), layout) {
            (false, _) => Vec::new(),
            (true, ConvLayout::Nchw) => w.to_vec(),
            (true, ConvLayout::Nhwc) => {
                let c = spec.out_channels;
                let mut out = vec![0.0; w.len()];
                for ch in 0..c {
                    for t in 0..taps {
                        out[t * c + ch] = w[ch * taps + t];
                    }
                }
                out
            }
        };
        Ok(ConvWeights { spec: *spec, layout, gemm, depthwise, panels: None })
    }

    /// Weights for running with `params`: an NHWC pointwise convolution (one group) on our
    /// micro backend gets its weights packed once into column panels (and keeps only those);
    /// anything else is [`ConvWeights::new`].
    pub fn for_params(spec: &Conv2dSpec, layout: ConvLayout, w: &[f32], params: &ConvParams) -> Result<Self, KernelError> {
        let mut cw = Self::new(spec, layout, w)?;
        if params.algo == ConvAlgo::Pointwise && params.gemm.backend == GemmBackend::Micro && layout == ConvLayout::Nhwc && spec.groups == 1
        {
            let n = spec.out_channels;
            let nr = super::pack::packed_layout_for(&params.gemm, n);
            cw.panels = Some(super::pack::pack_b(&cw.gemm, spec.in_channels, n, false, n, nr)?);
            cw.gemm = Vec::new();
        }
        Ok(cw)
    }
}

/// `y = act(conv(x, w) + bias)`. `x` and `y` are in `w`'s layout; `bias` has one value per
/// output channel.
pub fn conv2d(
    x: &[f32],
    w: &ConvWeights,
    bias: Option<&[f32]>,
    act: Activation,
    y: &mut [f32],
    params: &ConvParams,
) -> Result<(), KernelError> {
    let spec = &w.spec;
    check_len(KERNEL, "input", x.len(), spec.input_len()?)?;
    check_len(KERNEL, "output", y.len(), spec.output_len()?)?;
    if let Some(b) = bias {
        check_len(KERNEL, "bias", b.len(), spec.out_channels)?;
    }
    if y.is_empty() {
        return Ok(());
    }
    let job = ConvJob { spec, w, x, bias, act, params };
    match params.algo {
        ConvAlgo::Depthwise if spec.is_depthwise() => {
            depthwise::run(&job, y);
            Ok(())
        }
        ConvAlgo::Pointwise if spec.is_pointwise() => im2col::pointwise(&job, y),
        ConvAlgo::Im2col => im2col::run(&job, y),
        ConvAlgo::Implicit if w.layout == ConvLayout::Nchw && implicit::applies(&job) => implicit::run(&job, y),
        ConvAlgo::Direct if direct::applies_to(spec, w.layout) => {
            direct::run(&job, y);
            Ok(())
        }
        other => Err(invalid(KERNEL, format!("{other:?} does not apply to {spec:?}"))),
    }
}

/// Everything a convolution algorithm needs (all lengths checked).
pub(crate) struct ConvJob<'a> {
    pub spec: &'a Conv2dSpec,
    pub w: &'a ConvWeights,
    pub x: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub act: Activation,
    pub params: &'a ConvParams,
}

//! `kiln::WMatMul` (X f32 `[.., K]`, constant W `[K, N]` f16 / bf16 / int4 / uint4 / int8 /
//! uint8 with scales and zero points per tensor, column or group of rows, bias, activation)
//! on the weight-only GEMM: the plan keeps W as stored; loading packs it into low-precision
//! panels (`WPacked`: 2, 1 or half a byte per weight plus the group scales), and each call
//! runs the tuned path (GEMV, dequantizing GEMM, AVX512-BF16 or AMX-BF16 tiles).

use super::{Dims, Lowered, activation, bound_shape, dtype_of, filler, pick, step_int, step_str, tune};
use crate::exec::Pool;
use crate::kernels::{Activation, WCompute, WEpilogue, WPacked, WScales, WSource, wgemm, wgemm_candidates, wpack};
use kiln_ir::{Graph, Node};
use kiln_target::{Step, TargetError, Tuner};
use kiln_tensor::{DType, Data, Tensor};

pub const KERNEL: &str = "cpu.wmatmul";

/// W, w_scale, w_zero_point and bias read from constants, with the attributes.
struct WOperands {
    w: Tensor,
    scale: Option<Tensor>,
    zero: Option<Tensor>,
    bias: Option<Vec<f32>>,
    block: usize,
    compute: WCompute,
}

impl WOperands {
    /// `get(i)` is input i's constant (None: absent or not a constant); `present(i)` whether
    /// input i is given at all.
    fn read(
        get: &dyn Fn(usize) -> Option<Tensor>,
        present: &dyn Fn(usize) -> bool,
        block: i64,
        compute: &str,
    ) -> Result<WOperands, String> {
        let compute = match compute {
            "f32" => WCompute::F32,
            "bf16" => WCompute::Bf16,
            other => return Err(format!("compute must be \"f32\" or \"bf16\", got {other:?}")),
        };
        let block = usize::try_from(block).map_err(|_| format!("block_size must be >= 0, got {block}"))?;
        let w = get(1).ok_or("W is not a constant")?;
        let n = match w.shape() {
            &[_, n] => n,
            s => return Err(format!("W must be [K, N], got {s:?}")),
        };
        let constant = |i: usize, name: &str| match present(i).then(|| get(i)) {
            None => Ok(None),
            Some(None) => Err(format!("{name} is not a constant")),
            Some(t) => Ok(t),
        };
        let (scale, zero) = (constant(2, "w_scale")?, constant(3, "w_zero_point")?);
        let bias = match constant(4, "bias")? {
            None => None,
            Some(b) if b.dtype() == DType::F32 && b.len() == n => Some(b.into_vec::<f32>().map_err(|e| e.to_string())?),
            Some(b) => return Err(format!("bias must be f32 of {n} elements, got {} {:?}", b.dtype(), b.shape())),
        };
        Ok(WOperands { w, scale, zero, bias, block, compute })
    }

    /// W packed for the kernels, checked against the reference's rules.
    fn pack(&self) -> Result<WPacked, String> {
        let (k, n) = match self.w.shape() {
            &[k, n] => (k, n),
            s => return Err(format!("W must be [K, N], got {s:?}")),
        };
        let bits = |v: &mut dyn Iterator<Item = u16>| v.collect::<Vec<u16>>();
        let float = |src: WSource<'_>| {
            if self.scale.is_some() || self.zero.is_some() {
                return Err(format!("{} weights take no w_scale or w_zero_point", self.w.dtype()));
            }
            wpack(src, k, n, None).map_err(|e| e.to_string())
        };
        match self.w.data() {
            Data::F16(v) => float(WSource::F16(&bits(&mut v.iter().map(|h| h.to_bits())))),
            Data::BF16(v) => float(WSource::Bf16(&bits(&mut v.iter().map(|h| h.to_bits())))),
            Data::I4(v) => self.pack_int(WSource::I4(v), k, n),
            Data::U4(v) => self.pack_int(WSource::U4(v), k, n),
            Data::I8(v) => self.pack_int(WSource::I8(v), k, n),
            Data::U8(v) => self.pack_int(WSource::U8(v), k, n),
            _ => Err(format!("W must be f16, bf16, int4, uint4, int8 or uint8, got {}", self.w.dtype())),
        }
    }

    fn pack_int(&self, src: WSource<'_>, k: usize, n: usize) -> Result<WPacked, String> {
        let s = self.scale.as_ref().ok_or("integer weights need a w_scale")?;
        let shape_ok =
            if self.block > 0 { s.shape() == [k.div_ceil(self.block), n] } else { s.len() == 1 || (s.rank() == 1 && s.len() == n) };
        if s.dtype() != DType::F32 || !shape_ok {
            return Err(format!("w_scale {} {:?} does not fit [{k}, {n}] weights with block_size {}", s.dtype(), s.shape(), self.block));
        }
        let zero: Vec<i32> = match &self.zero {
            None => Vec::new(),
            Some(z) if z.dtype() == self.w.dtype() && z.shape() == s.shape() => match z.data() {
                Data::I4(v) | Data::I8(v) => v.iter().map(|&x| i32::from(x)).collect(),
                Data::U4(v) | Data::U8(v) => v.iter().map(|&x| i32::from(x)).collect(),
                _ => return Err("w_zero_point has an unexpected element type".into()),
            },
            Some(z) => return Err(format!("w_zero_point ({} {:?}) must match W's type and w_scale's shape", z.dtype(), z.shape())),
        };
        let scale = s.as_slice::<f32>().map_err(|e| e.to_string())?;
        wpack(src, k, n, Some(WScales { scale, zero_point: &zero, block: self.block })).map_err(|e| e.to_string())
    }
}

fn graph_operands(g: &Graph, node: &Node) -> Result<WOperands, String> {
    let get = |i: usize| node.inputs.get(i).copied().flatten().and_then(|v| g.initializers.get(&v).cloned());
    let present = |i: usize| node.inputs.get(i).copied().flatten().is_some();
    WOperands::read(&get, &present, node.attr_int("block_size").unwrap_or(0), node.attr_str("compute").unwrap_or("f32"))
}

pub fn lower(g: &Graph, node: &Node, dims: &Dims, tuner: &mut Tuner) -> Result<Option<Lowered>, TargetError> {
    if dtype_of(g, node, 0) != Some(DType::F32) {
        return Ok(None);
    }
    let Some(act) = activation::from_node(node) else { return Ok(None) };
    let Ok(ops) = graph_operands(g, node) else { return Ok(None) };
    let Ok(step) = WMatMulStep::new(&ops, act) else { return Ok(None) };
    let (k, n) = (step.packed.k(), step.packed.n());
    let variant = match bound_shape(g, node, 0, dims) {
        Some(a) if a.len() >= 2 && a.last() == Some(&k) => {
            let m: usize = a[..a.len() - 1].iter().product();
            let cands = wgemm_candidates(m, step.packed.kind(), step.compute, crate::device::cores());
            let names: Vec<String> = cands.iter().map(|c| format!("{c:?}")).collect();
            let x = filler(m * k);
            let mut c = vec![0f32; m * n];
            let problem = format!("m={m},k={k},n={n},{:?},g={},{:?}", step.packed.kind(), step.packed.group(), step.compute);
            tune(tuner, KERNEL, problem, &names, |i| step.product(&x, m, &mut c, &names[i]))?
        }
        _ => "default".to_string(),
    };
    Ok(Some(Lowered { kernel: KERNEL, variant }))
}

/// A loaded WMatMul: packed low-precision weights, bias, activation, compute.
pub struct WMatMulStep {
    packed: WPacked,
    bias: Option<Vec<f32>>,
    act: Activation,
    compute: WCompute,
}

impl WMatMulStep {
    fn new(ops: &WOperands, act: Activation) -> Result<WMatMulStep, String> {
        Ok(WMatMulStep { packed: ops.pack()?, bias: ops.bias.clone(), act, compute: ops.compute })
    }

    pub fn load(step: &Step, weight: &dyn Fn(usize) -> Option<Tensor>) -> Result<WMatMulStep, String> {
        let act = activation::from_step(step).ok_or("unsupported activation")?;
        let get = |i: usize| step.inputs.get(i).copied().flatten().and_then(weight);
        let present = |i: usize| step.inputs.get(i).copied().flatten().is_some();
        let ops = WOperands::read(&get, &present, step_int(step, "block_size").unwrap_or(0), step_str(step, "compute").unwrap_or("f32"))?;
        WMatMulStep::new(&ops, act)
    }

    fn product(&self, x: &[f32], m: usize, c: &mut [f32], variant: &str) -> Result<(), String> {
        let cands = wgemm_candidates(m, self.packed.kind(), self.compute, crate::device::cores());
        let params = pick(&cands, variant).ok_or("no weight-only GEMM candidate")?;
        let epi = WEpilogue { bias: self.bias.as_deref(), act: self.act };
        wgemm(x, m, &self.packed, self.compute, &epi, c, &params).map_err(|e| e.to_string())
    }

    pub fn run(&mut self, inputs: &[Option<&Tensor>], variant: &str, pool: &mut Pool) -> Result<Tensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input X is missing")?;
        let (k, n) = (self.packed.k(), self.packed.n());
        if x.rank() < 2 || x.shape().last() != Some(&k) {
            return Err(format!("X has shape {:?}; its last dimension must be {k}", x.shape()));
        }
        let m: usize = x.shape()[..x.rank() - 1].iter().product();
        // Every element is written, so a pooled buffer needs no zeroing.
        let mut c = pool.take(m * n);
        self.product(x.as_slice::<f32>().map_err(|e| e.to_string())?, m, &mut c, variant)?;
        let mut shape = x.shape().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = n;
        }
        Tensor::from_vec(shape, c).map_err(|e| e.to_string())
    }
}

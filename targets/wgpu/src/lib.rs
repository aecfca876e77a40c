//! Kiln's wgpu target: WGSL compute kernels generated per plan step, tuned on the adapter,
//! with every op the kernels do not cover running on the CPU target inside the same plan
//! (explicit upload / readback steps at each crossing).
//!
//! Architecture invariant: wgpu (and WGSL) is known here and nowhere upstream; the CPU part of
//! a plan is the CPU target's, used through its public API.

pub mod bench;
pub mod bench_int8;
pub mod bench_peak;
pub mod device;
mod error;
mod exec;
pub mod int8;
mod kernels;
mod lower;
mod runtime;
mod tune;
mod weights;

pub use error::WgpuError;
pub use exec::WgpuExecutable;
pub use lower::{READBACK, TRANSFER, UPLOAD};

use kiln_ir::{Model, OpSet};
use kiln_target::{Availability, CompileOptions, CostEstimate, Executable, Plan, Target, TargetError, TargetId, Tuner};
use std::collections::BTreeMap;

/// The wgpu target (Vulkan, Metal, DX12 or GL through wgpu; lavapipe in CI).
#[derive(Default)]
pub struct WgpuTarget;

/// Where each step of a wgpu plan runs, for reports: (wgpu steps, CPU steps, transfers).
pub fn placement(plan: &Plan) -> (usize, usize, usize) {
    let gpu = plan.steps.iter().filter(|s| lower::is_gpu(s)).count();
    let transfers = plan.steps.iter().filter(|s| s.kernel == TRANSFER).count();
    (gpu, plan.steps.len() - gpu - transfers, transfers)
}

/// Every variant of a wgpu kernel (`wgpu.matmul`, ...), default first.
pub fn kernel_variants(kernel: &str) -> &'static [&'static str] {
    kernels::variants(kernel)
}

/// Whether a wgpu kernel records dispatches (and so has a launch geometry): `wgpu.reshape`
/// and `wgpu.shape` only relabel a device value or read its shape.
pub fn kernel_dispatches(kernel: &str) -> bool {
    !kernels::only_relabels(kernel) && !kernels::output_on_host(kernel)
}

/// Whether a wgpu kernel has an f16 form: in a plan compiled for f16 on an adapter with
/// shader-f16 its steps store (and compute, see the kernel) in f16; the others stay f32,
/// with casts on the device around them.
pub fn kernel_takes_f16(kernel: &str) -> bool {
    kernels::takes_f16(kernel)
}

/// f16 storage and math need the adapter's `shader-f16`; without it this says why.
pub fn f16_support() -> Result<(), WgpuError> {
    let g = device::gpu()?;
    if g.shader_f16 {
        Ok(())
    } else {
        let why = if std::env::var(device::NO_F16).is_ok_and(|v| v == "1") {
            format!("{}=1 opened the device without it", device::NO_F16)
        } else {
            "the adapter does not offer it".to_string()
        };
        Err(WgpuError::NotSupported(format!(
            "f16 storage and math (the device on '{}' lacks shader-f16, wgpu::Features::SHADER_F16: {why})",
            device::description(&g)
        )))
    }
}

impl Target for WgpuTarget {
    fn name(&self) -> &'static str {
        "wgpu"
    }

    fn probe(&self) -> Availability {
        match device::gpu() {
            Ok(g) => Availability::Available { device: device::description(&g) },
            Err(WgpuError::NoAdapter { reason, remedy }) => Availability::Unavailable { reason, remedy },
            Err(e) => Availability::Unavailable { reason: e.to_string(), remedy: device::REMEDY.into() },
        }
    }

    fn id(&self) -> TargetId {
        match device::gpu() {
            Ok(g) => TargetId { kind: "wgpu".into(), device: device::description(&g), fingerprint: device::fingerprint(&g) },
            Err(_) => TargetId { kind: "wgpu".into(), device: "no adapter".into(), fingerprint: "wgpu/none".into() },
        }
    }

    /// Every op of the reference executor: those without a WGSL kernel run on the CPU target.
    fn coverage(&self) -> OpSet {
        kiln_target_cpu::CpuTarget.coverage()
    }

    fn lower(&self, model: &Model, opts: &CompileOptions, tuner: &mut Tuner) -> Result<(Plan, Vec<u8>), TargetError> {
        lower::lower(model, self.id(), opts, tuner)
    }

    fn load(&self, plan: &Plan, weights: Vec<u8>) -> Result<Box<dyn Executable>, TargetError> {
        if plan.target.kind != "wgpu" {
            return Err(TargetError::Plan {
                path: "<plan>".into(),
                reason: format!("the plan was compiled for target '{}', not wgpu", plan.target.kind),
            });
        }
        let gpu = device::gpu().map_err(|e| TargetError::Plan { path: "<plan>".into(), reason: e.to_string() })?;
        Ok(Box::new(WgpuExecutable::load(gpu, plan, weights)?))
    }

    fn estimate(&self, plan: &Plan, _dims: &BTreeMap<String, usize>) -> CostEstimate {
        let bytes: f64 = plan.weights.iter().map(|w| w.bytes as f64).sum();
        CostEstimate {
            seconds: bytes / 100e9,
            flops: 0.0,
            bytes,
            model: "weight streaming at an assumed 100 GB/s device bandwidth (lower bound)".into(),
        }
    }
}

//! Kiln's CPU target: lowering to a plan, execution, and (in `kernels`) CPU kernels
//! dispatched by CPU features.
//!
//! Architecture invariant: CPU-specific code (feature detection, SIMD kernels, threading
//! granularity) lives here and nowhere upstream.

pub mod alloc;
pub mod device;
mod exec;
pub mod kernels;
mod lower;
mod native;
mod shape_memo;
pub mod par;

pub use exec::CpuExecutable;
/// Step helpers other targets share, so a kernel that takes over a CPU step reads its
/// attributes exactly as the CPU kernel does.
pub mod steps {
    pub use crate::native::batchnorm::fold as fold_batchnorm;
    pub use crate::native::resize::{Settings as ResizeSettings, Target as ResizeTarget, taps as resize_taps};
}

use kiln_ir::{Model, OpSet};
use kiln_target::{Availability, CompileOptions, CostEstimate, Executable, Plan, Target, TargetError, TargetId, Tuner};
use std::collections::BTreeMap;

/// Whether this CPU computes bf16 x bf16 products natively (AVX512-BF16): where it does,
/// `kiln::WMatMul` with `compute = "bf16"` runs at bf16 speed instead of emulating it.
pub fn computes_bf16() -> bool {
    kernels::cpu_features().avx512bf16
}

/// The CPU target.
#[derive(Default)]
pub struct CpuTarget;

impl Target for CpuTarget {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn probe(&self) -> Availability {
        Availability::Available { device: device::description() }
    }

    fn id(&self) -> TargetId {
        TargetId { kind: "cpu".into(), device: device::description(), fingerprint: device::fingerprint() }
    }

    /// Convolutions and linear layers (f32, constant weights) run on native kernels; every
    /// other op falls back to its reference kernel, so the CPU target covers exactly the
    /// reference executor's ops.
    fn coverage(&self) -> OpSet {
        kiln_reference::op_set()
    }

    fn lower(&self, model: &Model, opts: &CompileOptions, tuner: &mut Tuner) -> Result<(Plan, Vec<u8>), TargetError> {
        lower::lower(model, self.id(), opts, tuner)
    }

    fn load(&self, plan: &Plan, weights: Vec<u8>) -> Result<Box<dyn Executable>, TargetError> {
        if plan.target.kind != "cpu" {
            return Err(TargetError::Plan {
                path: "<plan>".into(),
                reason: format!("the plan was compiled for target '{}', not cpu", plan.target.kind),
            });
        }
        Ok(Box::new(CpuExecutable::load(plan, weights)?))
    }

    fn estimate(&self, plan: &Plan, _dims: &BTreeMap<String, usize>) -> CostEstimate {
        let bytes: f64 = plan.weights.iter().map(|w| w.bytes as f64).sum();
        // Until per-kernel FLOP counts exist, the estimate is the time to stream the weights once
        // at an assumed 10 GB/s: a lower bound, labelled as such.
        CostEstimate { seconds: bytes / 10e9, flops: 0.0, bytes, model: "weight streaming at an assumed 10 GB/s (lower bound)".into() }
    }
}

//! The wgpu target's errors, each naming the problem and the way out.

use kiln_target::TargetError;

#[derive(Debug, thiserror::Error)]
pub enum WgpuError {
    #[error("no wgpu adapter: {reason}; {remedy}")]
    NoAdapter { reason: String, remedy: String },
    #[error("the adapter refused a device: {0}; check the driver (`vulkaninfo --summary`) or run on the cpu target")]
    Device(String),
    #[error(
        "kernel '{kernel}' ({variant}) failed to compile on the adapter: {reason}; this is a Kiln bug, run the layer on the cpu target meanwhile"
    )]
    Shader { kernel: String, variant: String, reason: String },
    #[error("reading a buffer back from the adapter failed: {0}")]
    Readback(String),
    #[error("{0} is not supported by this adapter; compile for f32 or pick another target")]
    NotSupported(String),
}

impl WgpuError {
    pub fn into_target(self, step: usize, kernel: &str) -> TargetError {
        TargetError::Run { step, kernel: kernel.to_string(), reason: self.to_string() }
    }
}

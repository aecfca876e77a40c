//! The adapter: found once per process, shared by every plan (a device per plan would cost
//! seconds on lavapipe and memory on a real GPU).

use crate::error::WgpuError;
use std::sync::{Arc, OnceLock};

/// The remedy printed when no adapter exists.
pub const REMEDY: &str = "install a Vulkan driver (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers libvulkan1` gives lavapipe, a CPU Vulkan driver) or use --target cpu";

/// `KILN_WGPU_NO_F16=1` opens the device without shader-f16 even where the adapter has it:
/// the "not supported" path, testable on any adapter.
pub const NO_F16: &str = "KILN_WGPU_NO_F16";

/// A device and queue on one adapter, with what kernels need to know of it.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// The adapter offers `shader-f16` (f16 storage and math in WGSL).
    pub shader_f16: bool,
}

static GPU: OnceLock<Result<Arc<Gpu>, String>> = OnceLock::new();

/// The shared device, created on first use.
pub fn gpu() -> Result<Arc<Gpu>, WgpuError> {
    GPU.get_or_init(|| {
        open().map(Arc::new).map_err(|e| match e {
            WgpuError::NoAdapter { reason, .. } => reason,
            other => other.to_string(),
        })
    })
    .clone()
    .map_err(|reason| WgpuError::NoAdapter { reason, remedy: REMEDY.into() })
}

fn open() -> Result<Gpu, WgpuError> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let opts = wgpu::RequestAdapterOptions { power_preference: wgpu::PowerPreference::HighPerformance, ..Default::default() };
    let adapter = pollster::block_on(instance.request_adapter(&opts))
        .map_err(|e| WgpuError::NoAdapter { reason: format!("no adapter found ({e})"), remedy: REMEDY.into() })?;
    let info = adapter.get_info();
    let adapter_limits = adapter.limits();
    let shader_f16 = adapter.features().contains(wgpu::Features::SHADER_F16) && std::env::var(NO_F16).map_or(true, |v| v != "1");
    // Ask for what the adapter has: big models need large storage buffers.
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: adapter_limits.max_storage_buffer_binding_size,
        max_buffer_size: adapter_limits.max_buffer_size,
        max_storage_buffers_per_shader_stage: adapter_limits.max_storage_buffers_per_shader_stage.min(10),
        max_compute_workgroup_storage_size: adapter_limits.max_compute_workgroup_storage_size,
        max_compute_invocations_per_workgroup: adapter_limits.max_compute_invocations_per_workgroup,
        max_compute_workgroup_size_x: adapter_limits.max_compute_workgroup_size_x,
        max_compute_workgroup_size_y: adapter_limits.max_compute_workgroup_size_y,
        ..wgpu::Limits::downlevel_defaults()
    };
    let features = if shader_f16 { wgpu::Features::SHADER_F16 } else { wgpu::Features::empty() };
    let desc = wgpu::DeviceDescriptor { label: Some("kiln"), required_features: features, required_limits: limits.clone(), ..Default::default() };
    let (device, queue) = pollster::block_on(adapter.request_device(&desc)).map_err(|e| WgpuError::Device(e.to_string()))?;
    Ok(Gpu { device, queue, info, limits, shader_f16 })
}

/// "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, cpu, Mesa 22.3.6)".
pub fn description(g: &Gpu) -> String {
    let i = &g.info;
    format!("{} ({:?}, {:?}, {} {})", i.name, i.backend, i.device_type, i.driver, i.driver_info).replace("  ", " ")
}

/// What tuning records are keyed by: vendor, device, driver and backend.
pub fn fingerprint(g: &Gpu) -> String {
    let i = &g.info;
    format!("wgpu/{:?}/{:04x}:{:04x}/{}/{} {}", i.backend, i.vendor, i.device, i.name, i.driver, i.driver_info)
}

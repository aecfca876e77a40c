//! Device buffers, a size-keyed pool that reuses them once their value is dead, shader
//! compilation with errors caught, dispatch, upload and readback.

use crate::device::Gpu;
use crate::error::WgpuError;
use std::collections::HashMap;
use std::sync::Arc;
use wgpu::util::DeviceExt;

/// An f32 tensor on the device (every wgpu kernel reads and writes f32).
#[derive(Clone)]
pub struct GpuTensor {
    pub buf: Arc<wgpu::Buffer>,
    pub shape: Vec<usize>,
}

impl GpuTensor {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Storage buffers start at 4 bytes (an empty binding is invalid) and round up to 256.
fn bucket(bytes: u64) -> u64 {
    bytes.max(4).div_ceil(256) * 256
}

/// Buffers freed by dead values, reused for later values of the same size class.
#[derive(Default)]
pub struct Pool {
    free: HashMap<u64, Vec<Arc<wgpu::Buffer>>>,
    pub allocated_bytes: u64,
}

const USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

impl Pool {
    pub fn take(&mut self, gpu: &Gpu, shape: &[usize]) -> Result<GpuTensor, WgpuError> {
        let n: usize = shape.iter().product();
        let size = bucket(n as u64 * 4);
        if size > gpu.limits.max_storage_buffer_binding_size {
            return Err(WgpuError::NotSupported(format!(
                "a {size}-byte tensor (shape {shape:?}; the adapter binds at most {} bytes)",
                gpu.limits.max_storage_buffer_binding_size
            )));
        }
        let buf = match self.free.get_mut(&size).and_then(Vec::pop) {
            Some(b) => b,
            None => {
                self.allocated_bytes += size;
                Arc::new(gpu.device.create_buffer(&wgpu::BufferDescriptor { label: None, size, usage: USAGE, mapped_at_creation: false }))
            }
        };
        Ok(GpuTensor { buf, shape: shape.to_vec() })
    }

    pub fn give(&mut self, t: GpuTensor) {
        // Only the last holder returns a buffer (weights and aliases keep theirs).
        if Arc::strong_count(&t.buf) == 1 {
            self.free.entry(t.buf.size()).or_default().push(t.buf);
        }
    }
}

/// Uploads f32 values into a fresh buffer (weights: once, at load).
pub fn upload(gpu: &Gpu, data: &[f32], shape: &[usize]) -> GpuTensor {
    let bytes: &[u8] = if data.is_empty() { &[0; 4] } else { bytemuck::cast_slice(data) };
    let buf = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytes, usage: USAGE });
    GpuTensor { buf: Arc::new(buf), shape: shape.to_vec() }
}

/// Submits `encoder` with a copy of `t` into a mappable buffer, waits, and returns the values.
pub fn readback(gpu: &Gpu, mut encoder: wgpu::CommandEncoder, t: &GpuTensor) -> Result<Vec<f32>, WgpuError> {
    let n = t.len();
    let size = (n as u64 * 4).max(4);
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    encoder.copy_buffer_to_buffer(&t.buf, 0, &staging, 0, size);
    gpu.queue.submit([encoder.finish()]);
    let slice = staging.slice(..);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| WgpuError::Readback(e.to_string()))?;
    rx.recv().map_err(|e| WgpuError::Readback(e.to_string()))?.map_err(|e| WgpuError::Readback(e.to_string()))?;
    let view = slice.get_mapped_range().map_err(|e| WgpuError::Readback(e.to_string()))?;
    let mut out = vec![0f32; n];
    bytemuck::cast_slice_mut::<f32, u8>(&mut out).copy_from_slice(&view[..n * 4]);
    drop(view);
    staging.unmap();
    Ok(out)
}

/// Waits for everything submitted so far (tuning measures whole submissions).
pub fn finish(gpu: &Gpu, encoder: wgpu::CommandEncoder) -> Result<(), WgpuError> {
    gpu.queue.submit([encoder.finish()]);
    gpu.device.poll(wgpu::PollType::wait_indefinitely()).map(|_| ()).map_err(|e| WgpuError::Readback(e.to_string()))
}

pub fn encoder(gpu: &Gpu) -> wgpu::CommandEncoder {
    gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
}

/// Compiles a WGSL compute shader (entry point `main`), turning validation errors into a
/// [`WgpuError::Shader`] instead of a panic.
pub fn pipeline(gpu: &Gpu, kernel: &str, variant: &str, source: &str) -> Result<wgpu::ComputePipeline, WgpuError> {
    let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module =
        gpu.device.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(kernel), source: wgpu::ShaderSource::Wgsl(source.into()) });
    let p = gpu.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(kernel),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    match pollster::block_on(scope.pop()) {
        None => Ok(p),
        Some(e) => Err(WgpuError::Shader { kernel: kernel.into(), variant: variant.into(), reason: e.to_string() }),
    }
}

/// u32 parameters a kernel gets (a uniform block, so loop bounds stay uniform for barriers).
pub const MAX_PARAMS: usize = 128;

/// The WGSL declaration of the parameter block (binding 0) and its accessor `P(i)`.
pub const PARAMS_WGSL: &str = "@group(0) @binding(0) var<uniform> p: array<vec4<u32>, 32>;\nfn P(i: u32) -> u32 { return p[i / 4u][i % 4u]; }\nfn PF(i: u32) -> f32 { return bitcast<f32>(P(i)); }\n";

/// Records one dispatch: binding 0 is the u32 parameter block, then `buffers` in order.
pub fn dispatch(
    gpu: &Gpu,
    enc: &mut wgpu::CommandEncoder,
    p: &wgpu::ComputePipeline,
    params: &[u32],
    buffers: &[&wgpu::Buffer],
    groups: [u32; 3],
) -> Result<(), String> {
    if params.len() > MAX_PARAMS {
        return Err(format!(
            "{} kernel parameters, more than the {MAX_PARAMS} a kernel takes (a tensor of too high rank or too many operands)",
            params.len()
        ));
    }
    let mut block = [0u32; MAX_PARAMS];
    block[..params.len()].copy_from_slice(params);
    let pbuf = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("params"),
        contents: bytemuck::cast_slice(&block),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: pbuf.as_entire_binding() }];
    for (i, b) in buffers.iter().enumerate() {
        entries.push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.as_entire_binding() });
    }
    let bg = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &p.get_bind_group_layout(0), entries: &entries });
    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
    pass.set_pipeline(p);
    pass.set_bind_group(0, &bg, &[]);
    pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
    Ok(())
}

/// Workgroup counts for `n` invocations of `wg` threads, folded into y past the 65535 limit.
pub fn groups_1d(n: usize, wg: u32) -> [u32; 3] {
    let g = n.div_ceil(wg as usize).max(1) as u32;
    if g <= 65535 { [g, 1, 1] } else { [65535, g.div_ceil(65535), 1] }
}

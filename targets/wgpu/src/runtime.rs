//! Device buffers, a size-keyed pool that reuses them once their value is dead, shader
//! compilation with errors caught, dispatch, upload and readback.

use crate::device::Gpu;
use crate::error::WgpuError;
use std::collections::HashMap;
use std::sync::Arc;
use wgpu::util::DeviceExt;

/// How a float tensor is stored on the device: f32, or f16 (steps of an f16 plan on an
/// adapter with shader-f16). Host values are always f32; transfers convert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Float {
    F32,
    F16,
}

impl Float {
    pub fn bytes(self) -> u64 {
        match self {
            Float::F32 => 4,
            Float::F16 => 2,
        }
    }

    /// The plan's name for it ("f32", "f16").
    pub fn name(self) -> &'static str {
        match self {
            Float::F32 => "f32",
            Float::F16 => "f16",
        }
    }

    pub fn from_name(name: &str) -> Option<Float> {
        match name {
            "f32" => Some(Float::F32),
            "f16" => Some(Float::F16),
            _ => None,
        }
    }

    /// What a shader starts with: the storage type alias `ST` its tensors use (and the f16
    /// extension when it is f16), and `to_st`, which stores an f32 result as `ST`. f16 stores
    /// saturate at +-65504, the largest finite f16: an attention mask of -3.4e38 (the f32
    /// minimum models use for "masked") would become -inf and turn a softmax over a fully
    /// masked chunk into NaN.
    pub fn header(self) -> &'static str {
        match self {
            Float::F32 => "alias ST = f32;\nfn to_st(x: f32) -> ST { return x; }\n",
            Float::F16 => "enable f16;\nalias ST = f16;\nfn to_st(x: f32) -> ST { return ST(clamp(x, -65504.0, 65504.0)); }\n",
        }
    }
}

/// A tensor on the device: floats in `float`, indices as int32 bits (tagged f32).
#[derive(Clone)]
pub struct GpuTensor {
    pub buf: Arc<wgpu::Buffer>,
    pub shape: Vec<usize>,
    pub float: Float,
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
    pub fn take(&mut self, gpu: &Gpu, shape: &[usize], float: Float) -> Result<GpuTensor, WgpuError> {
        let n: usize = shape.iter().product();
        let size = bucket(n as u64 * float.bytes());
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
        Ok(GpuTensor { buf, shape: shape.to_vec(), float })
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
    upload_as(gpu, data, shape, Float::F32)
}

/// Uploads f32 values into a fresh buffer stored as `float` (rounded to nearest for f16).
pub fn upload_as(gpu: &Gpu, data: &[f32], shape: &[usize], float: Float) -> GpuTensor {
    let mut bytes: Vec<u8> = match float {
        Float::F32 => bytemuck::cast_slice(data).to_vec(),
        Float::F16 => data.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect(),
    };
    // Whole 16-byte units, so a shader may bind any tensor as vec4s (the register-blocked
    // GEMM, `kernels::matmul_reg`) and reach every element; the pool's classes are 256 bytes.
    bytes.resize(bytes.len().max(16).div_ceil(16) * 16, 0);
    let buf = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: &bytes, usage: USAGE });
    GpuTensor { buf: Arc::new(buf), shape: shape.to_vec(), float }
}

/// Submits `encoder` with a copy of `t` into a mappable buffer, waits, and returns the values
/// (f16 ones widened to f32).
pub fn readback(gpu: &Gpu, mut encoder: wgpu::CommandEncoder, t: &GpuTensor) -> Result<Vec<f32>, WgpuError> {
    let n = t.len();
    let bytes = n * t.float.bytes() as usize;
    let size = (bytes as u64).max(4).div_ceil(4) * 4;
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
    let out = match t.float {
        Float::F32 => {
            let mut out = vec![0f32; n];
            bytemuck::cast_slice_mut::<f32, u8>(&mut out).copy_from_slice(&view[..bytes]);
            out
        }
        Float::F16 => view[..bytes].chunks_exact(2).map(|h| half::f16::from_le_bytes([h[0], h[1]]).to_f32()).collect(),
    };
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

//! `GlobalAveragePool` / `GlobalMaxPool` (f32): one reduction per (image, channel) plane,
//! planes over threads.

use super::{Lowered, dtype_of};
use kiln_ir::{Graph, Node};
use kiln_tensor::{DType, Tensor};

pub const KERNEL: &str = "cpu.global_pool";

pub fn lower(g: &Graph, node: &Node) -> Option<Lowered> {
    (dtype_of(g, node, 0) == Some(DType::F32)).then(|| Lowered { kernel: KERNEL, variant: "default".into() })
}

pub struct GlobalPoolStep {
    max: bool,
}

impl GlobalPoolStep {
    pub fn load(op: &str) -> Result<GlobalPoolStep, String> {
        match op {
            "GlobalAveragePool" => Ok(GlobalPoolStep { max: false }),
            "GlobalMaxPool" => Ok(GlobalPoolStep { max: true }),
            other => Err(format!("{other} is not a global pool")),
        }
    }

    pub fn run(&mut self, inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
        let x = inputs.first().copied().flatten().ok_or("input X is missing")?;
        if x.rank() < 3 {
            return Err(format!("X must have rank >= 3, got {:?}", x.shape()));
        }
        let planes = x.shape()[0] * x.shape()[1];
        let inner: usize = x.shape()[2..].iter().product();
        let src = x.as_slice::<f32>().map_err(|e| e.to_string())?;
        let reduce = |p: usize| {
            let plane = &src[p * inner..][..inner];
            if self.max {
                plane.iter().fold(f32::NEG_INFINITY, |m, &v| if v.is_nan() || v > m { v } else { m })
            } else {
                // Eight partial sums: vectorisable and less rounding error on big planes.
                let mut acc = [0f32; 8];
                let chunks = plane.chunks_exact(8);
                let tail: f32 = chunks.remainder().iter().sum();
                for c in chunks {
                    for (a, v) in acc.iter_mut().zip(c) {
                        *a += v;
                    }
                }
                (acc.iter().sum::<f32>() + tail) / inner as f32
            }
        };
        let out: Vec<f32> = if inner == 0 {
            vec![if self.max { f32::NEG_INFINITY } else { f32::NAN }; planes]
        } else if planes * inner >= 1 << 16 {
            {
                let mut out = vec![0f32; planes];
                crate::par::chunks(&mut out, 1, crate::par::ALL, |i, o| o[0] = reduce(i));
                out
            }
        } else {
            (0..planes).map(reduce).collect()
        };
        let mut shape = x.shape().to_vec();
        shape[2..].iter_mut().for_each(|d| *d = 1);
        Tensor::from_vec(shape, out).map_err(|e| e.to_string())
    }
}

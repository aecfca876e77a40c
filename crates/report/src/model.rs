use serde::{Deserialize, Serialize};

/// The JSON schema a report follows; bumped with [`SCHEMA_VERSION`].
pub const SCHEMA: &str = "https://kiln.invalid/schemas/validation-report/v1.json";
/// Readers refuse newer reports.
pub const SCHEMA_VERSION: u32 = 1;
/// The in-toto predicate type of a validation attestation.
pub const PREDICATE_TYPE: &str = "https://kiln.invalid/attestations/validation/v1";

/// Where a figure comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum Basis {
    /// Measured on `device` over `runs`; `spread` is (max - min) / median of the runs, 0 when
    /// the figure is exact for the inputs used.
    Measured { device: String, runs: u64, spread: f64 },
    /// Not measured: `model` says how it was estimated.
    Estimated { model: String },
}

/// A number with its unit and its basis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub value: f64,
    pub unit: String,
    #[serde(flatten)]
    pub basis: Basis,
}

impl Figure {
    pub fn measured(value: f64, unit: &str, device: &str, runs: u64, spread: f64) -> Figure {
        Figure { value, unit: unit.into(), basis: Basis::Measured { device: device.into(), runs, spread } }
    }
    pub fn estimated(value: f64, unit: &str, model: &str) -> Figure {
        Figure { value, unit: unit.into(), basis: Basis::Estimated { model: model.into() } }
    }
    pub fn is_measured(&self) -> bool {
        matches!(self.basis, Basis::Measured { .. })
    }
    /// "measured" or "estimated".
    pub fn label(&self) -> &'static str {
        if self.is_measured() { "measured" } else { "estimated" }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArtifactInfo {
    pub name: String,
    pub version: String,
    /// `sha256:<hex>` of the artifact's manifest.
    pub digest: String,
    pub target: String,
    pub device: String,
    pub precision: String,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputAccuracy {
    pub name: String,
    pub max_abs: Figure,
    pub max_rel: Figure,
    pub cosine: Figure,
    /// Rows (over the last axis) where the artifact's arg-max equals the reference's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top1: Option<Figure>,
    /// Rows where the reference's arg-max is among the artifact's top 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top5: Option<Figure>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// What the artifact was compared with.
    pub reference: String,
    /// Input sets compared.
    pub samples: u64,
    /// Where the inputs came from ("seeded random, seed 0", "folder data/ (32 samples)").
    pub inputs: String,
    pub outputs: Vec<OutputAccuracy>,
    /// Task metric when labels were given (classification accuracy of the first output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Figure>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub batch: u64,
    pub warmup: u64,
    pub min: Figure,
    pub p50: Figure,
    pub p90: Figure,
    pub p99: Figure,
    pub max: Figure,
    /// Inferences (batch items) per second at the median.
    pub throughput: Figure,
    /// Every timed run, milliseconds, in run order (for the distribution chart).
    pub samples_ms: Vec<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Peak of intermediate buffers in the executable's memory plan (bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_peak: Option<Figure>,
    /// The process's peak resident set (VmHWM) after the runs (bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_peak_rss: Option<Figure>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// $ per hour of the machine the price table names.
    pub price_per_hour: f64,
    pub price_source: String,
    /// $ per million inferences at the median latency of the first batch size.
    pub per_million: Figure,
    pub power_watts: f64,
    /// Joules per inference (always estimated: no power meter is read).
    pub energy_per_inference: Figure,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    pub time: Figure,
}

/// Plan steps by kernel and precision (the precision map): the precision a target marked on a
/// step (f16, int8, a weight-only type), else the element type of its output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrecisionRow {
    pub kernel: String,
    pub precision: String,
    pub steps: u64,
}

/// Error of one layer against the reference, when a build is quantized.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerError {
    pub layer: String,
    pub max_abs: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    pub gate: String,
    pub passed: bool,
    pub message: String,
}

/// A validation report about one artifact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    #[serde(rename = "$schema")]
    pub schema: String,
    pub schema_version: u32,
    pub artifact: ArtifactInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<Accuracy>,
    #[serde(default)]
    pub latency: Vec<Latency>,
    #[serde(default)]
    pub memory: Memory,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    #[serde(default)]
    pub compile: Vec<Stage>,
    #[serde(default)]
    pub precision_map: Vec<PrecisionRow>,
    #[serde(default)]
    pub layer_error: Vec<LayerError>,
    #[serde(default)]
    pub gates: Vec<GateResult>,
}

impl Report {
    pub fn new(artifact: ArtifactInfo) -> Report {
        Report {
            schema: SCHEMA.into(),
            schema_version: SCHEMA_VERSION,
            artifact,
            accuracy: None,
            latency: Vec::new(),
            memory: Memory::default(),
            cost: None,
            compile: Vec::new(),
            precision_map: Vec::new(),
            layer_error: Vec::new(),
            gates: Vec::new(),
        }
    }

    /// Parses a report, refusing newer schemas.
    pub fn from_json(bytes: &[u8]) -> Result<Report, crate::ReportError> {
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| crate::ReportError::Invalid(format!("not JSON: {e}")))?;
        let version = v.get("schema_version").and_then(|x| x.as_u64()).unwrap_or(0);
        if version > u64::from(SCHEMA_VERSION) {
            return Err(crate::ReportError::Invalid(format!("schema {version} is newer than this Kiln reads ({SCHEMA_VERSION})")));
        }
        serde_json::from_value(v).map_err(|e| crate::ReportError::Invalid(format!("does not match the report schema: {e}")))
    }

    pub fn passed(&self) -> bool {
        self.gates.iter().all(|g| g.passed)
    }
}

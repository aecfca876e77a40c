//! What the bench needs from each engine: a timed run and the outputs of one run.

use crate::outputs::Output;

pub trait Engine {
    /// One run on the bench inputs; milliseconds measured in-process around the run call only
    /// (input copies and IPC excluded).
    fn run_once(&mut self) -> anyhow::Result<f64>;
    /// One run; its outputs in the model's output order, and its time as for `run_once`.
    fn outputs(&mut self) -> anyhow::Result<(Vec<Output>, f64)>;
    /// A memory figure in bytes, if the engine has one (Kiln: planned peak of intermediate
    /// buffers; onnxruntime: its worker's peak RSS). Labelled where printed.
    fn memory(&mut self) -> Option<u64> {
        None
    }
}

//! Kiln's validation report: what an artifact was measured to do.
//!
//! [`Report`] is the model (serialized as JSON under a versioned schema, [`SCHEMA`]); every
//! figure in it is a [`Figure`] labelled `measured {device, runs, spread}` or
//! `estimated {model}`. Renderers: [`render::json`], [`render::markdown`] (a pull-request
//! comment), [`render::html`] (self-contained, inline CSS and SVG charts) and [`render::junit`]
//! (CI systems). [`gate`] parses and evaluates gates (`latency.p99<=20ms`, regression gates
//! against a baseline); [`diff`] compares two artifacts. [`stats`] holds the arithmetic
//! (percentiles, error metrics) so it is tested apart from any executor.
//!
//! Architecture invariant: knows the report and the artifact manifest; nothing of models,
//! executors, targets or the CLI. No clock is read here: measurements come in as numbers.

pub mod diff;
mod error;
pub mod gate;
mod model;
pub mod render;
pub mod stats;

pub use error::ReportError;
pub use model::*;

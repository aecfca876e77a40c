use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum ReportError {
    #[error("gate '{gate}': {reason}")]
    Gate { gate: String, reason: String },
    #[error("unknown metric '{metric}' in gate '{gate}'; known metrics: {known}")]
    UnknownMetric { gate: String, metric: String, known: String },
    #[error("report: {0}")]
    Invalid(String),
}

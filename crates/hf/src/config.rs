//! config.json, read by key with the defaults of Hugging Face transformers.

use crate::HfError;
use serde_json::Value;
use std::path::Path;

/// A model's config.json.
#[derive(Clone, Debug)]
pub struct Config {
    json: Value,
}

impl Config {
    pub fn from_json(json: Value) -> Result<Config, HfError> {
        if !json.is_object() {
            return Err(HfError::Config { key: "<root>".into(), reason: "config.json is not a JSON object".into() });
        }
        Ok(Config { json })
    }

    pub fn read(path: &Path) -> Result<Config, HfError> {
        let text = std::fs::read(path).map_err(|source| HfError::Io { path: path.to_path_buf(), source })?;
        let json = serde_json::from_slice(&text).map_err(|e| HfError::Json { path: path.to_path_buf(), reason: e.to_string() })?;
        Config::from_json(json)
    }

    /// `model_type`, as the builder registry keys it.
    pub fn model_type(&self) -> Result<&str, HfError> {
        self.json.get("model_type").and_then(Value::as_str).ok_or(HfError::NoModelType)
    }

    pub fn raw(&self, key: &str) -> Option<&Value> {
        self.json.get(key).filter(|v| !v.is_null())
    }

    /// A required positive integer.
    pub fn usize(&self, key: &str) -> Result<usize, HfError> {
        let v = self.raw(key).ok_or_else(|| HfError::Config { key: key.into(), reason: "is missing".into() })?;
        v.as_u64()
            .filter(|&n| n > 0)
            .map(|n| n as usize)
            .ok_or_else(|| HfError::Config { key: key.into(), reason: format!("is {v}, not a positive integer") })
    }

    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize, HfError> {
        if self.raw(key).is_some() { self.usize(key) } else { Ok(default) }
    }

    /// An integer that may be zero or negative (e.g. `pad_token_id`).
    pub fn i64_or(&self, key: &str, default: i64) -> Result<i64, HfError> {
        match self.raw(key) {
            None => Ok(default),
            Some(v) => v.as_i64().ok_or_else(|| HfError::Config { key: key.into(), reason: format!("is {v}, not an integer") }),
        }
    }

    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64, HfError> {
        match self.raw(key) {
            None => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| HfError::Config { key: key.into(), reason: format!("is {v}, not a number") }),
        }
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, HfError> {
        match self.raw(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| HfError::Config { key: key.into(), reason: format!("is {v}, not true or false") }),
        }
    }

    pub fn str_or<'a>(&'a self, key: &str, default: &'a str) -> Result<&'a str, HfError> {
        match self.raw(key) {
            None => Ok(default),
            Some(v) => v.as_str().ok_or_else(|| HfError::Config { key: key.into(), reason: format!("is {v}, not a string") }),
        }
    }
}

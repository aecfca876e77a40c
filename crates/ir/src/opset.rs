use std::collections::BTreeMap;

/// The ops an executor implements: (domain, op_type) -> inclusive opset range.
///
/// The ONNX importer marks every node outside the set it is given as unsupported, so that a
/// model's whole list of missing ops is known at once; `kiln inspect` prints it per executor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpSet {
    name: String,
    entries: BTreeMap<(String, String), (i64, i64)>,
}

impl OpSet {
    pub fn new(name: impl Into<String>) -> OpSet {
        OpSet { name: name.into(), entries: BTreeMap::new() }
    }

    /// Who implements this set (for messages), e.g. "reference".
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn insert(&mut self, domain: &str, op_type: &str, min_opset: i64, max_opset: i64) {
        self.entries.insert((normalize(domain).to_string(), op_type.to_string()), (min_opset, max_opset));
    }

    /// The opset range this set supports for an op, if any.
    pub fn range(&self, domain: &str, op_type: &str) -> Option<(i64, i64)> {
        self.entries.get(&(normalize(domain).to_string(), op_type.to_string())).copied()
    }

    pub fn supports(&self, domain: &str, op_type: &str, opset: i64) -> bool {
        self.range(domain, op_type).is_some_and(|(lo, hi)| (lo..=hi).contains(&opset))
    }

    /// Every (domain, op_type) in the set, sorted.
    pub fn ops(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.keys().map(|(d, o)| (d.as_str(), o.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `ai.onnx` and `""` name the same domain.
pub fn normalize(domain: &str) -> &str {
    if domain == "ai.onnx" { "" } else { domain }
}

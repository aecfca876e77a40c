use kiln_tensor::Tensor;

/// A runtime value: a tensor, a sequence of tensors, an optional, or a sequence of maps.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Tensor(Tensor),
    Sequence(Vec<Tensor>),
    Optional(Option<Box<Value>>),
    /// A sequence of maps: what ai.onnx.ml ZipMap makes of a classifier's scores.
    Maps(Vec<Map>),
}

/// An ai.onnx.ml map: `keys` (1-D, int64 or string, no repeats) to `values` (1-D, the same
/// length), entry by entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Map {
    pub keys: Tensor,
    pub values: Tensor,
}

impl Value {
    pub fn as_tensor(&self) -> Option<&Tensor> {
        if let Value::Tensor(t) = self { Some(t) } else { None }
    }
    pub fn into_tensor(self) -> Option<Tensor> {
        if let Value::Tensor(t) = self { Some(t) } else { None }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Tensor(_) => "tensor",
            Value::Sequence(_) => "sequence",
            Value::Optional(_) => "optional",
            Value::Maps(_) => "sequence of maps",
        }
    }
}

impl From<Tensor> for Value {
    fn from(t: Tensor) -> Value {
        Value::Tensor(t)
    }
}

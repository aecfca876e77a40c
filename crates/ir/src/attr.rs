use crate::Graph;
use kiln_tensor::Tensor;

/// A node attribute. Strings are bytes, as in ONNX; [`Attr::as_str`] decodes them.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    Float(f32),
    Int(i64),
    String(Vec<u8>),
    Tensor(Tensor),
    Graph(Box<Graph>),
    Floats(Vec<f32>),
    Ints(Vec<i64>),
    Strings(Vec<Vec<u8>>),
    Tensors(Vec<Tensor>),
    Graphs(Vec<Graph>),
    /// A type attribute (ONNX `TypeProto`), kept as its element type when it has one.
    Type(Option<kiln_tensor::DType>),
}

impl Attr {
    pub fn as_int(&self) -> Option<i64> {
        if let Attr::Int(v) = self { Some(*v) } else { None }
    }
    pub fn as_float(&self) -> Option<f32> {
        match self {
            Attr::Float(v) => Some(*v),
            Attr::Int(v) => Some(*v as f32),
            _ => None,
        }
    }
    pub fn as_ints(&self) -> Option<&[i64]> {
        if let Attr::Ints(v) = self { Some(v) } else { None }
    }
    pub fn as_floats(&self) -> Option<&[f32]> {
        if let Attr::Floats(v) = self { Some(v) } else { None }
    }
    pub fn as_str(&self) -> Option<&str> {
        if let Attr::String(v) = self { std::str::from_utf8(v).ok() } else { None }
    }
    pub fn as_strings(&self) -> Option<Vec<String>> {
        if let Attr::Strings(v) = self {
            Some(v.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
        } else {
            None
        }
    }
    pub fn as_tensor(&self) -> Option<&Tensor> {
        if let Attr::Tensor(v) = self { Some(v) } else { None }
    }
    pub fn as_graph(&self) -> Option<&Graph> {
        if let Attr::Graph(g) = self { Some(g) } else { None }
    }
}

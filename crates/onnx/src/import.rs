//! ModelProto -> IR.

use crate::OnnxError;
use crate::functions::Functions;
use crate::tensor::{sparse_to_dense, tensor_from_proto};
use kiln_ir::{Attr, Graph, Model, Node, OpSet, ValueId, normalize_domain};
use kiln_tensor::{DType, Dim, Shape};
use onnx_protobuf::{
    AttributeProto, GraphProto, Message, ModelProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType,
    tensor_shape_proto::dimension, type_proto,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// Newest ai.onnx opset Kiln reads.
pub const MAX_DEFAULT_OPSET: i64 = 21;
/// Newest ONNX IR version Kiln reads (IR 10 is ONNX 1.16).
pub const MAX_IR_VERSION: i64 = 10;

/// Reads and imports a model file; external data is resolved against the file's folder.
pub fn load(path: &Path, ops: &OpSet) -> Result<Model, OnnxError> {
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Io { path: path.to_path_buf(), source })?;
    // A bare file name's parent is "", which names no folder: external data is then relative
    // to the current directory.
    let dir = match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => Path::new("."),
    };
    import_bytes(&bytes, Some(dir), ops)
}

/// Imports a serialized ModelProto. Nodes whose op (at the model's opset) is not in `ops` are
/// kept, marked unsupported. The result has passed [`kiln_ir::verify`].
pub fn import_bytes(bytes: &[u8], base_dir: Option<&Path>, ops: &OpSet) -> Result<Model, OnnxError> {
    crate::wire::check_framing(bytes).map_err(OnnxError::Decode)?;
    let mp = ModelProto::parse_from_bytes(bytes).map_err(|e| OnnxError::Decode(e.to_string()))?;
    let gp = mp.graph.as_ref().ok_or(OnnxError::NoGraph)?;
    if mp.ir_version < 3 || mp.ir_version > MAX_IR_VERSION {
        if mp.ir_version == 0 && gp.node.is_empty() {
            return Err(OnnxError::NoGraph);
        }
        // Newer IR versions are read when their opset is supported: fields Kiln does not know are
        // skipped by the decoder, and the opset check below is what guards semantics.
        if mp.ir_version < 3 {
            return Err(OnnxError::IrVersion { found: mp.ir_version, max: MAX_IR_VERSION });
        }
    }
    let mut opsets = BTreeMap::new();
    for o in &mp.opset_import {
        opsets.insert(normalize_domain(&o.domain).to_string(), o.version);
    }
    if opsets.is_empty() {
        // Required since IR version 3 (the oldest Kiln reads); a file cut after its graph lacks it.
        return Err(OnnxError::Decode("the model has no opset_import (every ONNX model since IR version 3 has one): is the file truncated?".into()));
    }
    if let Some(&v) = opsets.get("")
        && v > MAX_DEFAULT_OPSET
    {
        return Err(OnnxError::OpsetTooNew { found: v, max: MAX_DEFAULT_OPSET });
    }
    let funcs = Functions::new(&mp, &opsets)?;
    let cx = Cx { opsets: &opsets, ops, base_dir, funcs: &funcs };
    let graph = cx.graph(gp)?;
    let model = Model {
        graph,
        ir_version: mp.ir_version,
        opsets,
        producer_name: mp.producer_name.clone(),
        producer_version: mp.producer_version.clone(),
        domain: mp.domain.clone(),
        model_version: mp.model_version,
        doc_string: mp.doc_string.clone(),
        metadata: mp.metadata_props.iter().map(|p| (p.key.clone(), p.value.clone())).collect(),
    };
    kiln_ir::verify(&model)?;
    Ok(model)
}

struct Cx<'a> {
    opsets: &'a BTreeMap<String, i64>,
    ops: &'a OpSet,
    base_dir: Option<&'a Path>,
    /// Model-local functions: calls to them are expanded inline (see functions.rs).
    funcs: &'a Functions<'a>,
}

impl Cx<'_> {
    fn graph(&self, gp: &GraphProto) -> Result<Graph, OnnxError> {
        let mut g = Graph::new(gp.name.clone());
        let mut names: HashMap<String, ValueId> = HashMap::new();
        fn value_in(names: &mut HashMap<String, ValueId>, g: &mut Graph, name: &str) -> ValueId {
            *names.entry(name.to_string()).or_insert_with(|| g.add_value(name, None, None))
        }
        macro_rules! value {
            ($g:expr, $name:expr) => {
                value_in(&mut names, $g, $name)
            };
        }
        let mut declared = HashSet::new();
        for vi in &gp.input {
            let v = value!(&mut g, &vi.name);
            if !declared.insert(v) {
                return Err(OnnxError::Value { value: vi.name.clone(), reason: "is declared twice as a graph input".into() });
            }
            apply_type(&mut g, v, vi)?;
            g.inputs.push(v);
        }
        for tp in &gp.initializer {
            if tp.name.is_empty() {
                return Err(OnnxError::Tensor { tensor: "<unnamed>".into(), reason: "initializer without a name".into() });
            }
            let t = tensor_from_proto(tp, self.base_dir)?;
            let v = value!(&mut g, &tp.name);
            if g.initializers.contains_key(&v) {
                return Err(OnnxError::Tensor { tensor: tp.name.clone(), reason: "is given twice as an initializer".into() });
            }
            let info = g.value_mut(v);
            info.dtype = Some(t.dtype());
            info.shape.get_or_insert_with(|| Shape::known(t.shape()));
            g.initializers.insert(v, t);
        }
        for sp in &gp.sparse_initializer {
            let (name, t) = sparse_to_dense(sp, self.base_dir)?;
            let v = value!(&mut g, &name);
            if g.initializers.contains_key(&v) {
                return Err(OnnxError::Tensor { tensor: name, reason: "is given twice as an initializer".into() });
            }
            let info = g.value_mut(v);
            info.dtype = Some(t.dtype());
            info.shape = Some(Shape::known(t.shape()));
            g.initializers.insert(v, t);
        }
        for ex in self.funcs.expand(&gp.node)? {
            // Nodes from a function body are read under the function's opsets.
            let cx = Cx { opsets: ex.opsets.unwrap_or(self.opsets), ..*self };
            let np = &*ex.node;
            let domain = normalize_domain(&np.domain).to_string();
            let opset = cx.opsets.get(&domain).copied().unwrap_or(0);
            let label = if np.name.is_empty() { np.op_type.clone() } else { np.name.clone() };
            let mut attrs = BTreeMap::new();
            for a in &np.attribute {
                let attr = cx.attr(a).map_err(|reason| OnnxError::Node { node: label.clone(), op: np.op_type.clone(), reason })?;
                if let Some(attr) = attr {
                    attrs.insert(a.name.clone(), attr);
                }
            }
            let inputs = np.input.iter().map(|n| (!n.is_empty()).then(|| value!(&mut g, n))).collect();
            let outputs = np.output.iter().map(|n| (!n.is_empty()).then(|| value!(&mut g, n))).collect();
            let unsupported = (!self.ops.supports(&domain, &np.op_type, opset)).then(|| {
                match self.ops.range(&domain, &np.op_type) {
                    Some((lo, hi)) => format!("{} supports {} at opsets {lo}..={hi}, the model uses {opset}", self.ops.name(), np.op_type),
                    None => format!("{} has no {} op", self.ops.name(), qualified(&domain, &np.op_type)),
                }
            });
            g.add_node(Node { name: np.name.clone(), op_type: np.op_type.clone(), domain, opset, inputs, outputs, attrs, unsupported });
        }
        for vi in &gp.value_info {
            if let Some(&v) = names.get(&vi.name) {
                apply_type(&mut g, v, vi)?;
            }
        }
        for vi in &gp.output {
            let v = value!(&mut g, &vi.name);
            apply_type(&mut g, v, vi)?;
            g.outputs.push(v);
        }
        Ok(g)
    }

    fn attr(&self, a: &AttributeProto) -> Result<Option<Attr>, String> {
        if !a.ref_attr_name.is_empty() {
            return Err(format!("attribute '{}' refers to function attribute '{}' outside a function body", a.name, a.ref_attr_name));
        }
        let tensor = |tp: &onnx_protobuf::TensorProto| self.tensor_attr(a, tp);
        let graph = |gp: &GraphProto| self.graph_attr(a, gp);
        let ty = a.type_.value();
        Ok(Some(match ty {
            x if x == AttributeType::FLOAT as i32 => Attr::Float(a.f),
            x if x == AttributeType::INT as i32 => Attr::Int(a.i),
            x if x == AttributeType::STRING as i32 => Attr::String(a.s.clone()),
            x if x == AttributeType::TENSOR as i32 => Attr::Tensor(tensor(a.t.get_or_default())?),
            x if x == AttributeType::GRAPH as i32 => Attr::Graph(Box::new(graph(a.g.get_or_default())?)),
            x if x == AttributeType::FLOATS as i32 => Attr::Floats(a.floats.clone()),
            x if x == AttributeType::INTS as i32 => Attr::Ints(a.ints.clone()),
            x if x == AttributeType::STRINGS as i32 => Attr::Strings(a.strings.clone()),
            x if x == AttributeType::TENSORS as i32 => Attr::Tensors(a.tensors.iter().map(tensor).collect::<Result<_, _>>()?),
            x if x == AttributeType::GRAPHS as i32 => Attr::Graphs(a.graphs.iter().map(graph).collect::<Result<_, _>>()?),
            x if x == AttributeType::SPARSE_TENSOR as i32 => {
                let (_, t) = sparse_to_dense(a.sparse_tensor.get_or_default(), self.base_dir).map_err(|e| format!("attribute '{}': {e}", a.name))?;
                Attr::Tensor(t)
            }
            x if x == AttributeType::TYPE_PROTO as i32 => Attr::Type(elem_type(a.tp.get_or_default())),
            0 => self.infer_untyped(a)?,
            other => return Err(format!("attribute '{}' has unsupported type {other}", a.name)),
        }))
    }
}

impl Cx<'_> {
    fn tensor_attr(&self, a: &AttributeProto, tp: &onnx_protobuf::TensorProto) -> Result<kiln_tensor::Tensor, String> {
        tensor_from_proto(tp, self.base_dir).map_err(|e| format!("attribute '{}': {e}", a.name))
    }

    fn graph_attr(&self, a: &AttributeProto, gp: &GraphProto) -> Result<Graph, String> {
        self.graph(gp).map_err(|e| format!("subgraph '{}': {e}", a.name))
    }

    /// Very old files leave an attribute's `type` unset; the filled field says which it is.
    fn infer_untyped(&self, a: &AttributeProto) -> Result<Attr, String> {
    Ok(if !a.floats.is_empty() {
        Attr::Floats(a.floats.clone())
    } else if !a.ints.is_empty() {
        Attr::Ints(a.ints.clone())
    } else if !a.strings.is_empty() {
        Attr::Strings(a.strings.clone())
    } else if let Some(t) = a.t.as_ref() {
        Attr::Tensor(self.tensor_attr(a, t)?)
    } else if let Some(g) = a.g.as_ref() {
        Attr::Graph(Box::new(self.graph_attr(a, g)?))
    } else if !a.s.is_empty() {
        Attr::String(a.s.clone())
    } else if a.f != 0.0 {
        Attr::Float(a.f)
    } else {
        Attr::Int(a.i)
    })
    }
}

fn qualified(domain: &str, op: &str) -> String {
    if domain.is_empty() { op.to_string() } else { format!("{domain}::{op}") }
}

fn elem_type(tp: &TypeProto) -> Option<DType> {
    match &tp.value {
        Some(type_proto::Value::TensorType(t)) => DType::from_onnx(t.elem_type),
        _ => None,
    }
}

/// Records a ValueInfoProto's tensor type on a value. Non-tensor types (sequences, maps,
/// optionals) leave the value untyped.
fn apply_type(g: &mut Graph, v: ValueId, vi: &ValueInfoProto) -> Result<(), OnnxError> {
    let Some(tp) = vi.type_.as_ref() else { return Ok(()) };
    let Some(type_proto::Value::TensorType(t)) = &tp.value else { return Ok(()) };
    let info = g.value_mut(v);
    if t.elem_type != 0 {
        info.dtype = Some(DType::from_onnx(t.elem_type).ok_or_else(|| OnnxError::Value {
            value: vi.name.clone(),
            reason: format!("element type code {} is not supported (complex and float8 are not read)", t.elem_type),
        })?);
    }
    if let Some(shape) = t.shape.as_ref() {
        let mut dims = Vec::with_capacity(shape.dim.len());
        for (i, d) in shape.dim.iter().enumerate() {
            dims.push(match &d.value {
                Some(dimension::Value::DimValue(n)) if *n >= 0 => Dim::Known(*n as usize),
                // Some exporters (paddle2onnx, old TensorFlow converters) write -1 for "unknown".
                Some(dimension::Value::DimValue(-1)) => Dim::Sym(format!("{}_d{i}", vi.name)),
                Some(dimension::Value::DimValue(n)) => {
                    return Err(OnnxError::Value { value: vi.name.clone(), reason: format!("dimension {i} is negative ({n})") });
                }
                // "?" is the conventional "unknown" (two "?" dims need not be equal), not a name.
                Some(dimension::Value::DimParam(p)) if !p.is_empty() && p != "?" => Dim::Sym(p.clone()),
                _ => Dim::Sym(format!("{}_d{i}", vi.name)),
            });
        }
        info.shape = Some(Shape(dims));
    }
    Ok(())
}

//! IR -> ModelProto.

use crate::OnnxError;
use kiln_ir::{Attr, DEFAULT_DOMAIN, Graph, Model, Node, ValueId};
use kiln_tensor::{Data, Dim, Shape, Tensor};
use onnx_protobuf::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto, attribute_proto::AttributeType, tensor_shape_proto, type_proto,
};
use std::collections::BTreeMap;

/// The IR version written when a model has none (built in memory): ONNX 1.12's, enough for
/// opset 17.
pub const DEFAULT_IR_VERSION: i64 = 8;

/// Where each initializer's bytes go: inline (`raw_data`) or at (offset, length) of an
/// external data file.
pub(crate) trait Placement {
    fn place(&mut self, name: &str, raw: &[u8]) -> Result<Option<(u64, u64)>, OnnxError>;
    fn location(&self) -> &str;
}

/// Every initializer inline.
pub(crate) struct Inline;

impl Placement for Inline {
    fn place(&mut self, _: &str, _: &[u8]) -> Result<Option<(u64, u64)>, OnnxError> {
        Ok(None)
    }
    fn location(&self) -> &str {
        ""
    }
}

/// Builds the ModelProto. Initializers of the main graph go where `placement` puts them;
/// everything else is inline.
pub(crate) fn model_proto(model: &Model, placement: &mut dyn Placement) -> Result<ModelProto, OnnxError> {
    let mut mp = ModelProto::new();
    mp.ir_version = if model.ir_version > 0 { model.ir_version } else { DEFAULT_IR_VERSION };
    // Opsets: the model's, plus any domain a node uses without one (fused kiln ops).
    let mut opsets: BTreeMap<String, i64> = model.opsets.clone();
    for n in model.all_nodes() {
        let d = kiln_ir::normalize_domain(&n.domain).to_string();
        let e = opsets.entry(d).or_insert(0);
        *e = (*e).max(n.opset);
    }
    for (domain, version) in opsets {
        let mut o = OperatorSetIdProto::new();
        o.domain = domain;
        o.version = version;
        mp.opset_import.push(o);
    }
    mp.producer_name = model.producer_name.clone();
    mp.producer_version = model.producer_version.clone();
    mp.domain = model.domain.clone();
    mp.model_version = model.model_version;
    mp.doc_string = model.doc_string.clone();
    for (k, v) in &model.metadata {
        let mut e = StringStringEntryProto::new();
        e.key = k.clone();
        e.value = v.clone();
        mp.metadata_props.push(e);
    }
    mp.graph = Some(graph_proto(&model.graph, true, placement)?).into();
    Ok(mp)
}

fn graph_proto(g: &Graph, main: bool, placement: &mut dyn Placement) -> Result<GraphProto, OnnxError> {
    let mut gp = GraphProto::new();
    gp.name = g.name.clone();
    let name = |v: ValueId| -> Result<String, OnnxError> {
        g.values
            .get(v.0)
            .map(|i| i.name.clone())
            .ok_or_else(|| OnnxError::Export(format!("graph '{}' refers to value #{} it does not have", g.name, v.0)))
    };
    let producers = g.producers();
    for &v in &g.inputs {
        gp.input.push(value_info(g, v, None));
    }
    for &v in &g.outputs {
        let node = producers.get(&v).map(|n| &g.nodes[n.0]);
        let vi = value_info(g, v, node);
        if main && vi.type_.is_none() {
            return Err(OnnxError::Export(format!(
                "graph output '{}' has no known type (ONNX needs one on every main-graph output); run shape inference (kiln compile --stop-after infer-shapes) first",
                vi.name
            )));
        }
        gp.output.push(vi);
    }
    for (&v, t) in &g.initializers {
        let tname = name(v)?;
        let mut tp = tensor_proto(&tname, t)?;
        if main && t.dtype() != kiln_tensor::DType::String {
            match placement.place(&tname, &tp.raw_data)? {
                None => {}
                Some((offset, length)) => {
                    tp.raw_data = Vec::new();
                    tp.data_location = onnx_protobuf::tensor_proto::DataLocation::EXTERNAL.into();
                    for (k, val) in [("location", placement.location().to_string()), ("offset", offset.to_string()), ("length", length.to_string())] {
                        let mut e = StringStringEntryProto::new();
                        e.key = k.into();
                        e.value = val;
                        tp.external_data.push(e);
                    }
                }
            }
        }
        gp.initializer.push(tp);
    }
    for n in &g.nodes {
        gp.node.push(node_proto(g, n, placement)?);
    }
    // Types of the values in between, where known.
    let io: std::collections::HashSet<ValueId> = g.inputs.iter().chain(&g.outputs).copied().collect();
    for n in &g.nodes {
        for &v in n.outputs.iter().flatten() {
            if io.contains(&v) {
                continue;
            }
            let vi = value_info(g, v, None);
            if vi.type_.is_some() {
                gp.value_info.push(vi);
            }
        }
    }
    Ok(gp)
}

fn node_proto(g: &Graph, n: &Node, placement: &mut dyn Placement) -> Result<NodeProto, OnnxError> {
    let mut np = NodeProto::new();
    np.name = n.name.clone();
    np.op_type = n.op_type.clone();
    np.domain = if n.domain == DEFAULT_DOMAIN || n.domain == "ai.onnx" { String::new() } else { n.domain.clone() };
    let value_name = |v: &Option<ValueId>| v.map_or(String::new(), |v| g.values.get(v.0).map_or(String::new(), |i| i.name.clone()));
    np.input = n.inputs.iter().map(value_name).collect();
    np.output = n.outputs.iter().map(value_name).collect();
    for (k, a) in &n.attrs {
        np.attribute.push(attr_proto(k, a, placement).map_err(|reason| OnnxError::Node { node: n.label(), op: n.op_type.clone(), reason })?);
    }
    Ok(np)
}

fn attr_proto(name: &str, a: &Attr, placement: &mut dyn Placement) -> Result<AttributeProto, String> {
    let mut ap = AttributeProto::new();
    ap.name = name.to_string();
    let ty = match a {
        Attr::Float(f) => {
            ap.f = *f;
            AttributeType::FLOAT
        }
        Attr::Int(i) => {
            ap.i = *i;
            AttributeType::INT
        }
        Attr::String(s) => {
            ap.s = s.clone();
            AttributeType::STRING
        }
        Attr::Tensor(t) => {
            ap.t = Some(tensor_proto("", t).map_err(|e| e.to_string())?).into();
            AttributeType::TENSOR
        }
        Attr::Graph(g) => {
            ap.g = Some(graph_proto(g, false, placement).map_err(|e| e.to_string())?).into();
            AttributeType::GRAPH
        }
        Attr::Floats(v) => {
            ap.floats = v.clone();
            AttributeType::FLOATS
        }
        Attr::Ints(v) => {
            ap.ints = v.clone();
            AttributeType::INTS
        }
        Attr::Strings(v) => {
            ap.strings = v.clone();
            AttributeType::STRINGS
        }
        Attr::Tensors(v) => {
            ap.tensors = v.iter().map(|t| tensor_proto("", t)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
            AttributeType::TENSORS
        }
        Attr::Graphs(v) => {
            ap.graphs = v.iter().map(|g| graph_proto(g, false, placement)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
            AttributeType::GRAPHS
        }
        Attr::Type(d) => {
            let mut tp = TypeProto::new();
            if let Some(d) = d {
                let mut t = type_proto::Tensor::new();
                t.elem_type = d.to_onnx();
                tp.value = Some(type_proto::Value::TensorType(t));
            }
            ap.tp = Some(tp).into();
            AttributeType::TYPE_PROTO
        }
    };
    ap.type_ = ty.into();
    Ok(ap)
}

/// A tensor as a TensorProto: `raw_data` for numbers, `string_data` for strings.
pub fn tensor_proto(name: &str, t: &Tensor) -> Result<TensorProto, OnnxError> {
    let mut tp = TensorProto::new();
    tp.name = name.to_string();
    tp.data_type = t.dtype().to_onnx();
    tp.dims = t.shape().iter().map(|&d| d as i64).collect();
    match t.data() {
        Data::String(v) => tp.string_data = v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        _ => tp.raw_data = t.to_raw_bytes().ok_or_else(|| OnnxError::Export(format!("tensor '{name}' has no raw form")))?,
    }
    Ok(tp)
}

fn value_info(g: &Graph, v: ValueId, producer: Option<&Node>) -> ValueInfoProto {
    let mut vi = ValueInfoProto::new();
    let Some(info) = g.values.get(v.0) else { return vi };
    vi.name = info.name.clone();
    if let Some(d) = info.dtype {
        let mut t = type_proto::Tensor::new();
        t.elem_type = d.to_onnx();
        if let Some(s) = &info.shape {
            t.shape = Some(shape_proto(s)).into();
        }
        let mut tp = TypeProto::new();
        tp.value = Some(type_proto::Value::TensorType(t));
        vi.type_ = Some(tp).into();
    } else if let Some(tp) = producer.and_then(non_tensor_type) {
        vi.type_ = Some(tp).into();
    }
    vi
}

fn shape_proto(s: &Shape) -> TensorShapeProto {
    let mut sp = TensorShapeProto::new();
    for d in &s.0 {
        let mut dim = tensor_shape_proto::Dimension::new();
        dim.value = Some(match d {
            Dim::Known(n) => tensor_shape_proto::dimension::Value::DimValue(*n as i64),
            Dim::Sym(name) => tensor_shape_proto::dimension::Value::DimParam(name.clone()),
        });
        sp.dim.push(dim);
    }
    sp
}

/// The IR keeps tensor types only; the one non-tensor main-graph output real models have is
/// ZipMap's sequence of maps, whose type its attributes give.
fn non_tensor_type(n: &Node) -> Option<TypeProto> {
    if n.op_type != "ZipMap" || n.domain != "ai.onnx.ml" {
        return None;
    }
    let key = if n.attr("classlabels_strings").is_some() { kiln_tensor::DType::String } else { kiln_tensor::DType::I64 };
    let tensor = |elem: i32| {
        let mut t = type_proto::Tensor::new();
        t.elem_type = elem;
        let mut tp = TypeProto::new();
        tp.value = Some(type_proto::Value::TensorType(t));
        tp
    };
    let mut map = type_proto::Map::new();
    map.key_type = key.to_onnx();
    map.value_type = Some(tensor(kiln_tensor::DType::F32.to_onnx())).into();
    let mut map_tp = TypeProto::new();
    map_tp.value = Some(type_proto::Value::MapType(map));
    let mut seq = type_proto::Sequence::new();
    seq.elem_type = Some(map_tp).into();
    let mut tp = TypeProto::new();
    tp.value = Some(type_proto::Value::SequenceType(seq));
    Some(tp)
}

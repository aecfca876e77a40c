//! Reading plan constants out of the weight blob, and cutting a blob down to what a CPU
//! segment of the plan reads.

use kiln_target::{AttrValue, Plan, Step, WeightRef};
use kiln_tensor::{DType, Tensor};

/// The constant tensor of plan value `v`, if it is one.
pub fn value_weight(plan: &Plan, blob: &[u8], v: usize) -> Option<Tensor> {
    let w = plan.values.get(v)?.weight?;
    weight(plan.weights.get(w)?, blob)
}

pub fn weight(w: &WeightRef, blob: &[u8]) -> Option<Tensor> {
    let dtype = DType::from_name(&w.dtype)?;
    let start = usize::try_from(w.offset).ok()?;
    let raw = blob.get(start..start.checked_add(usize::try_from(w.bytes).ok()?)?)?;
    Tensor::from_raw_bytes(dtype, w.shape.clone(), raw).ok()
}

/// Weight indices a step reads (its constant inputs and tensor attributes).
pub fn step_weights(plan: &Plan, s: &Step) -> Vec<usize> {
    let mut out: Vec<usize> = s.inputs.iter().flatten().filter_map(|&v| plan.values.get(v).and_then(|pv| pv.weight)).collect();
    out.extend(s.attrs.values().filter_map(|a| if let AttrValue::Tensor(i) = a { Some(*i) } else { None }));
    out
}

/// Weight references of a sub-blob, its bytes, and old weight index -> new index.
pub type SubBlob = (Vec<WeightRef>, Vec<u8>, Vec<Option<usize>>);

/// A sub-blob holding only `keep` (old weight indices), 64-byte aligned, and the index map.
pub fn sub_blob(plan: &Plan, blob: &[u8], keep: &[usize]) -> Result<SubBlob, String> {
    let mut map = vec![None; plan.weights.len()];
    let mut refs = Vec::new();
    let mut bytes = Vec::new();
    for &w in keep {
        if map.get(w).copied().flatten().is_some() {
            continue;
        }
        let r = plan.weights.get(w).ok_or_else(|| format!("weight {w} does not exist"))?;
        let start = r.offset as usize;
        let raw = blob.get(start..start + r.bytes as usize).ok_or_else(|| format!("weight '{}' runs past the blob", r.name))?;
        let offset = bytes.len().div_ceil(64) * 64;
        bytes.resize(offset, 0);
        bytes.extend_from_slice(raw);
        refs.push(WeightRef { offset: offset as u64, ..r.clone() });
        map[w] = Some(refs.len() - 1);
    }
    Ok((refs, bytes, map))
}

/// Rewrites the weights marked in `narrow` (by weight index; row-major f32 ones) as f16,
/// rounded to nearest, and lays every weight out again 64-byte aligned: the new blob.
pub fn narrow_to_f16(plan: &mut Plan, blob: &[u8], narrow: &[bool]) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(blob.len());
    for (w, r) in plan.weights.iter_mut().enumerate() {
        let raw = blob.get(r.offset as usize..(r.offset + r.bytes) as usize).ok_or_else(|| format!("weight '{}' runs past the blob", r.name))?;
        let data = if narrow.get(w).copied().unwrap_or(false) && r.dtype == "f32" && r.layout == "row-major" {
            let t = Tensor::from_raw_bytes(DType::F32, r.shape.clone(), raw).map_err(|e| format!("weight '{}': {e}", r.name))?;
            let h = t.cast(DType::F16).map_err(|e| format!("weight '{}': {e}", r.name))?;
            r.dtype = "f16".into();
            h.to_raw_bytes().ok_or_else(|| format!("weight '{}' has no raw form", r.name))?
        } else {
            raw.to_vec()
        };
        let offset = bytes.len().div_ceil(64) * 64;
        bytes.resize(offset, 0);
        bytes.extend_from_slice(&data);
        (r.offset, r.bytes) = (offset as u64, data.len() as u64);
    }
    Ok(bytes)
}

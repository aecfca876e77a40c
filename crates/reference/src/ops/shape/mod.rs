//! Shape and data-movement ops: every dtype the spec allows, strings included where the op
//! only moves elements.

mod common;
mod concat;
mod constant;
mod depth_space;
mod expand;
mod gather;
mod identity;
mod nonzero;
mod onehot;
mod pad;
mod range;
mod reshape;
mod resize;
mod reverse_sequence;
mod scatter;
mod shape_of;
mod slice;
mod split;
mod topk;
mod transpose;
mod trilu;
mod unique;

#[cfg(test)]
mod tests;

use crate::Registry;

pub fn register(r: &mut Registry) {
    r.tensor("Constant", 1..=21, constant::constant);
    r.tensor("ConstantOfShape", 9..=21, constant::constant_of_shape);
    r.value("Identity", 1..=21, identity::identity);
    r.tensor("Dropout", 1..=21, identity::dropout);
    r.tensor("Shape", 1..=21, shape_of::shape);
    r.tensor("Size", 1..=21, shape_of::size);
    r.tensor("Reshape", 1..=21, reshape::reshape);
    r.tensor("Flatten", 1..=21, reshape::flatten);
    r.tensor("Squeeze", 1..=21, reshape::squeeze);
    r.tensor("Unsqueeze", 1..=21, reshape::unsqueeze);
    r.tensor("Transpose", 1..=21, transpose::transpose);
    r.tensor("Concat", 1..=21, concat::concat);
    r.tensor("Split", 1..=21, split::split);
    r.tensor("Slice", 1..=21, slice::slice);
    r.tensor("Gather", 1..=21, gather::gather);
    r.tensor("GatherElements", 11..=21, gather::gather_elements);
    r.tensor("GatherND", 11..=21, gather::gather_nd);
    r.tensor("ScatterElements", 11..=21, scatter::scatter_elements);
    r.tensor("Scatter", 9..=10, scatter::scatter_elements);
    r.tensor("ScatterND", 11..=21, scatter::scatter_nd);
    r.tensor("Expand", 8..=21, expand::expand);
    r.tensor("Tile", 1..=21, expand::tile);
    r.tensor("Pad", 1..=21, pad::pad);
    r.tensor("CenterCropPad", 18..=21, pad::center_crop_pad);
    r.tensor("Range", 11..=21, range::range);
    r.tensor("Trilu", 14..=21, trilu::trilu);
    r.tensor("EyeLike", 9..=21, trilu::eye_like);
    r.tensor("OneHot", 9..=21, onehot::one_hot);
    r.tensor("TopK", 1..=21, topk::top_k);
    r.tensor("NonZero", 9..=21, nonzero::non_zero);
    r.tensor("Compress", 9..=21, nonzero::compress);
    r.tensor("Unique", 11..=21, unique::unique);
    r.tensor("SpaceToDepth", 1..=21, depth_space::space_to_depth);
    r.tensor("DepthToSpace", 1..=21, depth_space::depth_to_space);
    r.tensor("Resize", 10..=21, resize::resize);
    r.tensor("Upsample", 7..=9, resize::upsample);
    r.tensor("ReverseSequence", 10..=21, reverse_sequence::reverse_sequence);
}

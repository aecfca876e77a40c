//! Shape and data-movement ops: every dtype the spec allows, strings included where the op
//! only moves elements.

mod common;
mod concat;
mod constant;
mod expand;
mod gather;
mod identity;
mod reshape;
mod shape_of;
mod slice;
mod split;
mod transpose;

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
    r.tensor("Expand", 8..=21, expand::expand);
    r.tensor("Tile", 1..=21, expand::tile);
}

//! Reference kernels, one op (or one small table of like ops) per file, grouped by family.
//! Each family's `register` adds its ops to the registry, one line per op.

pub mod control;
pub mod kiln;
pub mod math;
pub mod ml;
pub mod nn;
pub mod shape;

use crate::Registry;

pub fn register_all(r: &mut Registry) {
    math::register(r);
    shape::register(r);
    nn::register(r);
    control::register(r);
    kiln::register(r);
    ml::register(r);
}

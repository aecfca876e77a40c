//! `Expand` of any element type but the 4-bit ones and strings: the input broadcast (numpy
//! rules, both ways) with the run-time shape input, through `broadcast::expand` (the
//! elementwise kernels' own): a row of the last axis at a time, a copy where the input has that
//! axis and a fill of one value where it is broadcast, so a mask expanded over a hidden size
//! costs a fill, not an index per element as in the reference kernel (0.17 ms for MiniLM's
//! [1, 128, 1] -> [1, 128, 384] there).

use super::broadcast::{self, broadcast_shape};
use super::{Lowered, dtype_of};
use kiln_ir::{Graph, Node};
use kiln_tensor::{DType, Data, Elem, Tensor, with_elem};

pub const KERNEL: &str = "cpu.expand";

pub fn lower(g: &Graph, node: &Node) -> Option<Lowered> {
    let ok = dtype_of(g, node, 0).is_some_and(|d| !matches!(d, DType::I4 | DType::U4 | DType::String))
        && dtype_of(g, node, 1) == Some(DType::I64);
    ok.then(|| Lowered { kernel: KERNEL, variant: "default".into() })
}

pub fn run(inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
    let (Some(x), Some(shape)) = (inputs.first().copied().flatten(), inputs.get(1).copied().flatten()) else {
        return Err("Expand needs an input and a shape".into());
    };
    let target: Vec<usize> = match shape.data() {
        Data::I64(v) => v
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| format!("Expand's shape {v:?} has a negative dimension")))
            .collect::<Result<_, _>>()?,
        other => return Err(format!("Expand's shape must be int64, got {}", other.dtype())),
    };
    let out_shape = broadcast_shape(x.shape(), &target).map_err(|e| format!("Expand: {e}"))?;
    with_elem!(x.data(), v => expand(v, x.shape(), out_shape), other => Err(format!("Expand does not take {} data", other.dtype())))
}

fn expand<T: Elem>(src: &[T], in_shape: &[usize], out_shape: Vec<usize>) -> Result<Tensor, String> {
    let out = broadcast::expand(src, in_shape, &out_shape);
    Tensor::from_vec(out_shape, out).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::run;
    use kiln_tensor::Tensor;

    fn shape(s: &[i64]) -> Tensor {
        Tensor::from_vec(vec![s.len()], s.to_vec()).expect("shape")
    }

    #[test]
    fn broadcasts_both_ways_for_any_element_type() {
        // [2, 1] with [3] -> [2, 3]: the last axis filled.
        let x = Tensor::from_vec(vec![2, 1], vec![7i64, 9]).expect("x");
        let y = run(&[Some(&x), Some(&shape(&[3]))]).expect("expand");
        assert_eq!(y.shape(), &[2, 3]);
        assert_eq!(y.as_slice::<i64>().expect("i64"), &[7, 7, 7, 9, 9, 9]);
        // [3] with [2, 1] -> [2, 3]: rows copied; a shape smaller than the input keeps it.
        let x = Tensor::from_vec(vec![3], vec![1f32, 2., 3.]).expect("x");
        let y = run(&[Some(&x), Some(&shape(&[2, 1]))]).expect("expand");
        assert_eq!(y.shape(), &[2, 3]);
        assert_eq!(y.as_slice::<f32>().expect("f32"), &[1., 2., 3., 1., 2., 3.]);
        // A middle axis broadcast, bool data.
        let x = Tensor::from_vec(vec![2, 1, 2], vec![true, false, false, true]).expect("x");
        let y = run(&[Some(&x), Some(&shape(&[2, 2, 2]))]).expect("expand");
        assert_eq!(y.as_slice::<bool>().expect("bool"), &[true, false, true, false, false, true, false, true]);
        // A scalar, and a zero-sized output.
        let x = Tensor::scalar(5u8);
        assert_eq!(run(&[Some(&x), Some(&shape(&[2, 2]))]).expect("expand").as_slice::<u8>().expect("u8"), &[5; 4]);
        assert_eq!(run(&[Some(&x), Some(&shape(&[0, 3]))]).expect("expand").shape(), &[0, 3]);
    }

    #[test]
    fn bad_shapes_are_named() {
        let x = Tensor::from_vec(vec![2, 3], vec![0f32; 6]).expect("x");
        let e = run(&[Some(&x), Some(&shape(&[4, 3]))]).err().unwrap_or_default();
        assert!(e.contains("cannot be broadcast") && e.contains("[2, 3]") && e.contains("[4, 3]"), "{e}");
        let e = run(&[Some(&x), Some(&shape(&[-1, 3]))]).err().unwrap_or_default();
        assert!(e.contains("negative dimension"), "{e}");
    }
}

//! MelWeightMatrix: a [floor(dft_length/2)+1, num_mel_bins] matrix of triangular filters,
//! evenly spaced on the mel scale (mel = 2595 log10(1 + hz/700)) between the edge frequencies,
//! each rising linearly from its lower to its center bin and falling to its upper bin.

use super::common::{dtype_attr, from_f64, scalar_f64, scalar_i64};
use crate::util::req;
use crate::{OpCtx, OpError, bail};
use kiln_tensor::{Tensor, checked_numel};

pub fn mel_weight_matrix(ctx: &OpCtx, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let mels = scalar_i64(req(inputs, 0)?, "num_mel_bins")?;
    let dft_len = scalar_i64(req(inputs, 1)?, "dft_length")?;
    let rate = scalar_i64(req(inputs, 2)?, "sample_rate")?;
    let lo = scalar_f64(req(inputs, 3)?, "lower_edge_hertz")?;
    let hi = scalar_f64(req(inputs, 4)?, "upper_edge_hertz")?;
    if mels < 1 || dft_len < 1 || rate < 1 || !(0.0 <= lo && lo < hi) {
        bail!("MelWeightMatrix needs positive sizes and 0 <= lower < upper edge, got {mels}, {dft_len}, {rate}, {lo}, {hi}");
    }
    let dtype = dtype_attr(ctx.attr_i("output_datatype", 1), "output_datatype")?;
    let (mels, rows) = (mels as usize, dft_len as usize / 2 + 1);
    checked_numel(&[rows as i64, mels as i64])?;
    let to_mel = |hz: f64| 2595.0 * (1.0 + hz / 700.0).log10();
    let (lo_mel, hi_mel) = (to_mel(lo), to_mel(hi));
    // The mels + 2 filter edges are spaced by (hi - lo) / (mels + 2) mel, as ONNX's and
    // onnxruntime's implementations (and the ONNX test data) do: the last edge falls short
    // of the upper edge frequency.
    let step = (hi_mel - lo_mel) / (mels + 2) as f64;
    // The spectrogram bin of each filter edge.
    let bins: Vec<usize> = (0..mels + 2)
        .map(|i| {
            let hz = 700.0 * (10f64.powf((lo_mel + i as f64 * step) / 2595.0) - 1.0);
            ((dft_len as f64 + 1.0) * hz / rate as f64).floor().max(0.0) as usize
        })
        .collect();
    let mut out = vec![0.0; rows * mels];
    let mut set = |row: usize, col: usize, v: f64| {
        if row < rows {
            out[row * mels + col] = v;
        }
    };
    for m in 0..mels {
        let (lower, center, upper) = (bins[m], bins[m + 1], bins[m + 2]);
        if center == lower {
            set(center, m, 1.0);
        } else {
            for j in lower..=center.min(rows) {
                set(j, m, (j - lower) as f64 / (center - lower) as f64);
            }
        }
        if upper > center {
            for j in center..upper.min(rows) {
                set(j, m, (upper - j) as f64 / (upper - center) as f64);
            }
        }
    }
    Ok(vec![from_f64(dtype, vec![rows, mels], &out)?])
}

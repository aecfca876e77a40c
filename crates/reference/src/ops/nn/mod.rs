//! Neural-network kernels: matrix products, convolution, pooling, recurrent cells,
//! quantisation, sampling and losses.

mod affine_grid;
mod col2im;
mod common;
mod conv;
mod conv_transpose;
mod deform_conv;
mod det;
mod einsum;
mod gemm;
mod grid_sample;
mod loss;
mod matmul;
mod nms;
mod pool;
mod qlinear;
mod quantize;
mod recurrent;
mod rnn;
mod roi;
mod unpool;

use crate::Registry;

pub fn register(r: &mut Registry) {
    r.tensor("MatMul", 1..=21, matmul::matmul);
    r.tensor("MatMulInteger", 10..=21, matmul::matmul_integer);
    r.tensor("Gemm", 1..=21, gemm::gemm);
    r.tensor("Conv", 1..=21, conv::conv);
    r.tensor("ConvInteger", 10..=21, conv::conv_integer);
    r.tensor("ConvTranspose", 1..=21, conv_transpose::conv_transpose);
    r.tensor("MaxPool", 1..=21, pool::max_pool);
    r.tensor("AveragePool", 1..=21, pool::average_pool);
    r.tensor("LpPool", 1..=21, pool::lp_pool);
    r.tensor("GlobalMaxPool", 1..=21, pool::global_max_pool);
    r.tensor("GlobalAveragePool", 1..=21, pool::global_average_pool);
    r.tensor("GlobalLpPool", 1..=21, pool::global_lp_pool);
    r.tensor("QuantizeLinear", 10..=21, quantize::quantize_linear);
    r.tensor("DequantizeLinear", 10..=21, quantize::dequantize_linear);
    r.tensor("DynamicQuantizeLinear", 11..=21, quantize::dynamic_quantize_linear);
    r.tensor("QLinearMatMul", 10..=21, qlinear::qlinear_matmul);
    r.tensor("QLinearConv", 10..=21, qlinear::qlinear_conv);
    r.tensor("RNN", 1..=21, rnn::rnn);
    r.tensor("GRU", 1..=21, rnn::gru);
    r.tensor("LSTM", 1..=21, rnn::lstm);
    r.tensor("NegativeLogLikelihoodLoss", 12..=21, loss::nll_loss);
    r.tensor("SoftmaxCrossEntropyLoss", 12..=21, loss::softmax_cross_entropy_loss);
    r.tensor("Einsum", 12..=21, einsum::einsum);
    r.tensor("Det", 11..=21, det::det_op);
    r.tensor("GridSample", 16..=21, grid_sample::grid_sample);
    r.tensor("AffineGrid", 20..=21, affine_grid::affine_grid);
    r.tensor("NonMaxSuppression", 10..=21, nms::non_max_suppression);
    r.tensor("MaxUnpool", 9..=21, unpool::max_unpool);
    r.tensor("Col2Im", 18..=21, col2im::col2im_op);
    r.tensor("RoiAlign", 10..=21, roi::roi_align);
    r.tensor("MaxRoiPool", 1..=21, roi::max_roi_pool);
    r.tensor("DeformConv", 19..=21, deform_conv::deform_conv);
}

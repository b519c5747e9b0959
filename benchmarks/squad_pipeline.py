"""Questions/s of the SQuAD data path: reading, windowed features (training and
prediction), n-best decoding and scoring, on a synthetic SQuAD-format file.

Passages are docstrings of the installed Python standard library (no download), ~120
words each; every passage gets `--questions_per_passage` questions whose answers are
random 1-4 word spans of it. The vocabulary is the characters, their `##` forms and the
most frequent words. Decoding uses random logits (the model is not what is measured).

    python -m benchmarks.squad_pipeline [--num_passages=2000] [--max_seq_length=384]
"""

from __future__ import annotations

import collections
import inspect
import json
import os
import random
import string
import tempfile
import time

import numpy as np
from absl import app, flags

from bert_keras.squad.evaluate import evaluate
from bert_keras.squad.features import convert_examples_to_features
from bert_keras.squad.postprocess import predict_answers
from bert_keras.squad.reader import gold_answers, read_squad
from bert_keras.tokenization import RESERVED_TOKENS, BertWordPieceTokenizer

_NUM_PASSAGES = flags.DEFINE_integer("num_passages", 2000, "Synthetic passages.")
_QUESTIONS = flags.DEFINE_integer("questions_per_passage", 5, "Questions per passage.")
_MAX_SEQ_LENGTH = flags.DEFINE_integer("max_seq_length", 384, "Window length T.")
_DOC_STRIDE = flags.DEFINE_integer("doc_stride", 128, "Window stride.")
_VOCAB_WORDS = flags.DEFINE_integer("vocab_words", 8000, "Frequent words in the vocab.")


def stdlib_passages(limit: int) -> list[str]:
    """Docstrings of stdlib modules, cut into ~120-word passages."""
    import importlib
    import pkgutil

    words: list[str] = []
    for info in sorted(pkgutil.iter_modules(), key=lambda m: m.name):
        if info.name.startswith("_") or "test" in info.name:
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # Platform modules that do not import here.
            continue
        for _, obj in inspect.getmembers(module):
            doc = inspect.getdoc(obj) if callable(obj) else None
            if doc:
                words.extend(doc.split())
        if len(words) > 130 * limit:
            break
    return [" ".join(words[i : i + 120]) for i in range(0, 120 * limit, 120)][:limit]


def synthetic_squad(passages: list[str], per_passage: int, rng: random.Random) -> dict:
    paragraphs = []
    for p, context in enumerate(passages):
        words = context.split(" ")
        starts = np.cumsum([0] + [len(w) + 1 for w in words])
        qas = []
        for q in range(per_passage):
            first = rng.randrange(len(words))
            last = min(len(words) - 1, first + rng.randrange(4))
            text = " ".join(words[first : last + 1])
            question = " ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) + "?"
            qas.append(
                {
                    "id": f"{p}-{q}",
                    "question": question,
                    "answers": [{"text": text, "answer_start": int(starts[first])}],
                }
            )
        paragraphs.append({"context": context, "qas": qas})
    return {"version": "1.1", "data": [{"title": "stdlib", "paragraphs": paragraphs}]}


def vocabulary(passages: list[str], num_words: int) -> list[str]:
    counts = collections.Counter(
        w for p in passages for w in p.lower().translate(_PUNCT_TO_SPACE).split()
    )
    chars = sorted({c for p in passages for c in p.lower() if not c.isspace()})
    return list(
        dict.fromkeys(
            list(RESERVED_TOKENS)
            + list(string.punctuation)
            + chars
            + ["##" + c for c in chars]
            + [w for w, _ in counts.most_common(num_words)]
        )
    )


_PUNCT_TO_SPACE = str.maketrans({c: " " for c in string.punctuation})


def _timed(label: str, n: int, unit: str, fn):
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<34} {seconds:8.2f} s  {n / seconds:10.0f} {unit}/s")
    return result


def main(argv):
    del argv
    rng = random.Random(0)
    passages = stdlib_passages(_NUM_PASSAGES.value)
    data = synthetic_squad(passages, _QUESTIONS.value, rng)
    tokenizer = BertWordPieceTokenizer(vocabulary(passages, _VOCAB_WORDS.value))
    t, stride = _MAX_SEQ_LENGTH.value, _DOC_STRIDE.value
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "train.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f)
        examples, stats = read_squad(path)
    n = len(examples)
    print(f"{len(passages)} passages, {n} questions, T={t}, doc_stride={stride}")
    print(stats.summary())
    convert_examples_to_features(examples[:8], tokenizer, t, stride, 64, True)  # Trace once.
    train, train_stats = _timed(
        "features (training)",
        n,
        "questions",
        lambda: convert_examples_to_features(examples, tokenizer, t, stride, 64, True),
    )
    print(f"  {train_stats.summary()}")
    features, _ = _timed(
        "features (prediction)",
        n,
        "questions",
        lambda: convert_examples_to_features(examples, tokenizer, t, stride, 64, False),
    )
    logits = np.random.default_rng(0).normal(size=(2, *features.input_word_ids.shape))
    predictions = _timed(
        "n-best decoding (n_best_size=20)",
        n,
        "questions",
        lambda: predict_answers(examples, features, logits[0], logits[1]),
    )
    _timed(
        "exact match / F1",
        n,
        "questions",
        lambda: evaluate(gold_answers(examples), predictions.answers),
    )


if __name__ == "__main__":
    app.run(main)

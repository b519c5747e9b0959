"""Shared helpers of the pipeline tests: generated corpora, vocabularies, record readers."""

from __future__ import annotations

import glob
import os
import random

import numpy as np
import tensorflow as tf

from bert_keras import records
from bert_keras.tokenization import RESERVED_TOKENS
from pipeline.documents import TokenizedDocument

WORDS = [f"w{i}" for i in range(200)]


def word_vocab() -> list[str]:
    """Reserved tokens, then every generated word (one piece each), a few pieces for splits."""
    return list(RESERVED_TOKENS) + WORDS + ["un", "##aff", "##able", "hello", "world", "."]


def write_vocab(path: str, vocab: list[str] | None = None) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in (vocab or word_vocab())))
    return path


def generate_corpus(
    num_documents: int,
    sentences: tuple[int, int] = (8, 20),
    words: tuple[int, int] = (4, 16),
    seed: int = 0,
) -> str:
    """GB-format text of random `w<i>` words: one sentence a line, blank line between docs."""
    rng = random.Random(seed)
    documents = []
    for _ in range(num_documents):
        lines = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(*words)))
            for _ in range(rng.randint(*sentences))
        ]
        documents.append("\n".join(lines))
    return "\n\n".join(documents) + "\n"


def write_text(path: str, text: str | bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def read_records(prefix: str) -> list[bytes]:
    """Every serialized example of the shards `prefix-*` (plain or GZIP), sorted."""
    serialized = []
    for path in sorted(glob.glob(prefix + "-*-of-*.tfrecord*")):
        dataset = tf.data.TFRecordDataset(path, compression_type=records.compression_type(path))
        serialized.extend(bytes(r.numpy()) for r in dataset)
    return sorted(serialized)


def tokenized_document(
    doc_id: str, sentences: list[list[int]], with_words: bool = False
) -> TokenizedDocument:
    """A TokenizedDocument from per-sentence ids (each id its own word when with_words)."""
    lengths = [len(s) for s in sentences]
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.array([i for s in sentences for i in s], np.int32)
    word_starts = np.ones(len(ids), bool) if with_words else None
    return TokenizedDocument(doc_id, ids, starts, word_starts)

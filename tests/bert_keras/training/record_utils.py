"""Tiny pretraining records for the training tests: GB's layout, learnable content.

Ids follow our vocab layout: [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4, words from 5.
Each segment counts upwards modulo the word range, so a masked id is predictable from its
neighbours and the loss of a tiny model falls within a few dozen steps.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from bert_keras import records

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
FIRST_WORD = 5


def write_vocab(path: str, vocab_size: int) -> str:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += [f"w{i}" for i in range(vocab_size - len(tokens))]
    with open(path, "w") as f:
        f.write("\n".join(tokens) + "\n")
    return path


def make_instance(rng: np.random.Generator, spec: records.RecordSpec, vocab_size: int) -> dict:
    """One instance `[CLS] A [SEP] B [SEP]`, zero-padded, masked as GB would."""
    seq_length = spec.max_seq_length
    num_words = vocab_size - FIRST_WORD
    total = int(rng.integers(seq_length // 2, seq_length - 3 + 1))
    len_a = int(rng.integers(1, total))
    start = int(rng.integers(num_words))
    is_random = int(rng.integers(2))
    start_b = int(rng.integers(num_words)) if is_random else start + len_a
    seg_a = [FIRST_WORD + (start + j) % num_words for j in range(len_a)]
    seg_b = [FIRST_WORD + (start_b + j) % num_words for j in range(total - len_a)]
    tokens = [CLS, *seg_a, SEP, *seg_b, SEP]
    segments = [0] * (len_a + 2) + [1] * (len(seg_b) + 1)
    pad = seq_length - len(tokens)
    features = {
        records.INPUT_IDS: tokens + [PAD] * pad,
        records.INPUT_MASK: [1] * len(tokens) + [0] * pad,
        records.SEGMENT_IDS: segments + [0] * pad,
    }
    if spec.has_masked_lm:
        candidates = [i for i, t in enumerate(tokens) if t not in (CLS, SEP)]
        num = min(spec.max_predictions_per_seq, max(1, round(len(tokens) * 0.15)))
        positions = sorted(rng.choice(candidates, size=num, replace=False).tolist())
        ids = [tokens[p] for p in positions]
        for p in positions:
            features[records.INPUT_IDS][p] = MASK
        pad_p = spec.max_predictions_per_seq - num
        features[records.MASKED_LM_POSITIONS] = positions + [0] * pad_p
        features[records.MASKED_LM_IDS] = ids + [0] * pad_p
        features[records.MASKED_LM_WEIGHTS] = [1.0] * num + [0.0] * pad_p
    if spec.has_next_sentence:
        features[records.NEXT_SENTENCE_LABELS] = [is_random]
    return features


def write_records(
    directory: str,
    spec: records.RecordSpec,
    *,
    num_files: int = 2,
    per_file: int = 64,
    vocab_size: int = 64,
    seed: int = 0,
) -> str:
    """Writes `num_files` shards; returns their glob."""
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    for shard in range(num_files):
        path = os.path.join(directory, f"train-{shard:05d}-of-{num_files:05d}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for _ in range(per_file):
                writer.write(records.serialize_example(make_instance(rng, spec, vocab_size), spec))
    return os.path.join(directory, "train-*.tfrecord")

"""Tiny models and a tiny vocabulary for the serving tests."""

from __future__ import annotations

import dataclasses
import string

import keras

from bert_keras.config import BertConfig
from bert_keras.models import BertEncoder
from bert_keras.serving.exporter import build_preprocessor

MAX_SEQ_LENGTH = 32
_WORDS = (
    "the a an man went to store good bad movie film was is it not hello world this that "
    "great terrible fun dull plot actors play un ##believ ##able ##s ##ing ##ed ##ly"
).split()
VOCAB = list(
    dict.fromkeys(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        + list(string.punctuation)
        + list(string.ascii_lowercase)
        + ["##" + c for c in string.ascii_lowercase]
        + _WORDS
    )
)


def write_vocab(path) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(VOCAB) + "\n")
    return str(path)


def tiny_config(**overrides) -> BertConfig:
    values = dict(vocab_size=len(VOCAB), max_position_embeddings=64)
    values.update(overrides)
    return BertConfig.from_preset("tiny", **values)


def tiny_encoder(seed: int = 0, **overrides) -> BertEncoder:
    keras.utils.set_random_seed(seed)
    return BertEncoder(**dataclasses.asdict(tiny_config(**overrides)))


def make_preprocessor(max_seq_length: int = MAX_SEQ_LENGTH, lower_case: bool = True):
    return build_preprocessor(VOCAB, do_lower_case=lower_case, max_seq_length=max_seq_length)

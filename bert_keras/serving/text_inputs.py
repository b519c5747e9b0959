"""Raw-text signature inputs: names, specs, and their path to token inputs.

A single-sentence model takes one (B,) string batch named `text`; a sentence-pair model
takes `text_a` and `text_b`, (B,) each.
"""

from __future__ import annotations

import tensorflow as tf

SINGLE_TEXT_NAMES = ("text",)
PAIR_TEXT_NAMES = ("text_a", "text_b")


def text_input_names(num_segments: int) -> tuple[str, ...]:
    if num_segments == 1:
        return SINGLE_TEXT_NAMES
    if num_segments == 2:
        return PAIR_TEXT_NAMES
    raise ValueError(f"num_segments must be 1 or 2, got {num_segments}.")


def text_input_specs(num_segments: int) -> dict[str, tf.TensorSpec]:
    """(B,) tf.string specs, unknown B, named as the signature inputs."""
    return {
        name: tf.TensorSpec([None], tf.string, name=name) for name in text_input_names(num_segments)
    }


def preprocess_text(preprocessor, texts: list[tf.Tensor]) -> dict[str, tf.Tensor]:
    """One or two (B,) string batches -> token inputs, int32 (B, max_seq_length).

    `preprocessor` is a `bert_keras.preprocessing.BertTextPreprocessor`; its tokenizer
    drops invalid UTF-8 bytes (as google-research/bert's `decode("utf-8", "ignore")`).
    """
    packed = preprocessor(texts if len(texts) > 1 else texts[0])
    return {name: tf.cast(packed[name], tf.int32) for name in packed}

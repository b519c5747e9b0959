"""The token-tensor inputs every exported model accepts, and their `tf.Example` form.

Dimensions: B batch, T sequence (`max_seq_length` for text inputs; any length <= the
encoder's `max_position_embeddings` for token inputs).

Token inputs use TF Hub's names (`input_word_ids`, `input_mask`, `input_type_ids`, int32
(B, T)). Serialized `tf.Example`s use google-research/bert's record names (`input_ids`,
`input_mask`, `segment_ids`, int64), the schema of `bert_keras.records` and of GB's
`run_classifier.py` features, so records written by the pipeline can be sent as they are.
"""

from __future__ import annotations

import tensorflow as tf

from bert_keras import records

TOKEN_INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")
# Token-input name -> its feature name in a serialized tf.Example.
EXAMPLE_FEATURE_NAMES = {
    "input_word_ids": records.INPUT_IDS,
    "input_mask": records.INPUT_MASK,
    "input_type_ids": records.SEGMENT_IDS,
}


def token_input_specs() -> dict[str, tf.TensorSpec]:
    """int32 (B, T) specs with unknown B and T, named as the signature inputs."""
    return {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in TOKEN_INPUT_NAMES}


def parse_token_examples(serialized: tf.Tensor, max_seq_length: int) -> dict[str, tf.Tensor]:
    """Serialized `tf.Example`s (B,) -> token inputs, int32 (B, max_seq_length).

    Each feature may have any length: shorter ones are padded with 0, longer ones cut at
    `max_seq_length`. A missing feature reads as all zeros (e.g. records without
    `segment_ids`); `input_mask` is then 1 wherever `input_ids` is nonzero.
    """
    spec = {feature: tf.io.VarLenFeature(tf.int64) for feature in EXAMPLE_FEATURE_NAMES.values()}
    parsed = tf.io.parse_example(serialized, spec)
    batch_size = tf.shape(serialized)[0]
    inputs = {}
    for name, feature in EXAMPLE_FEATURE_NAMES.items():
        dense = tf.sparse.to_dense(parsed[feature])  # (B, longest)
        dense = dense[:, :max_seq_length]
        pad = max_seq_length - tf.shape(dense)[1]
        dense = tf.pad(dense, [[0, 0], [0, pad]])  # (B, max_seq_length)
        inputs[name] = tf.cast(tf.reshape(dense, [batch_size, max_seq_length]), tf.int32)
    has_mask = tf.reduce_any(tf.not_equal(inputs["input_mask"], 0), axis=1, keepdims=True)
    implied_mask = tf.cast(tf.not_equal(inputs["input_word_ids"], 0), tf.int32)
    inputs["input_mask"] = tf.where(has_mask, inputs["input_mask"], implied_mask)  # (B, T)
    return inputs


def validate_token_inputs(
    inputs: dict[str, tf.Tensor], vocab_size: int, type_vocab_size: int, max_length: int
) -> dict[str, tf.Tensor]:
    """Returns `inputs` after checks that fail the request with a message naming the input
    (TF Serving answers INVALID_ARGUMENT with it) instead of an index error deep in the model:
    ids in [0, vocab_size), type ids in [0, type_vocab_size), T <= max_length, equal shapes,
    a real token in every row."""
    word_ids = inputs["input_word_ids"]
    checks = [
        tf.debugging.assert_equal(
            tf.shape(inputs["input_mask"]),
            tf.shape(word_ids),
            message="input_mask must have the shape of input_word_ids",
        ),
        tf.debugging.assert_equal(
            tf.shape(inputs["input_type_ids"]),
            tf.shape(word_ids),
            message="input_type_ids must have the shape of input_word_ids",
        ),
        tf.debugging.assert_less_equal(
            tf.shape(word_ids)[1],
            max_length,
            message=f"sequences longer than the model's {max_length} positions",
        ),
        tf.debugging.assert_equal(
            tf.reduce_all(tf.reduce_any(tf.not_equal(inputs["input_mask"], 0), axis=1)),
            True,
            message="every row of input_mask needs a 1 (at least on its [CLS])",
        ),
        tf.debugging.assert_non_negative(word_ids, message="negative input_word_ids"),
        tf.debugging.assert_less(
            word_ids, vocab_size, message=f"input_word_ids must be < vocab_size={vocab_size}"
        ),
        tf.debugging.assert_non_negative(
            inputs["input_type_ids"], message="negative input_type_ids"
        ),
        tf.debugging.assert_less(
            inputs["input_type_ids"],
            type_vocab_size,
            message=f"input_type_ids must be < type_vocab_size={type_vocab_size}",
        ),
    ]
    with tf.control_dependencies(checks):
        return {name: tf.identity(inputs[name]) for name in TOKEN_INPUT_NAMES}

import numpy as np
import tensorflow as tf

from bert_keras.layers import (
    RestorePadding,
    TrimPadding,
    UnpadTokens,
    trim_batch,
    trimmed_length,
)
from tests.bert_keras.models.model_test_utils import assert_config_complete


def test_trimmed_length_rounds_up_and_caps():
    mask = np.zeros((2, 40), "int32")
    mask[0, :5] = 1
    mask[1, :17] = 1
    assert int(trimmed_length(mask, 16)) == 32
    assert int(trimmed_length(mask, 1)) == 17
    assert int(trimmed_length(mask, 64)) == 40  # Never more than T.
    assert int(trimmed_length(np.zeros((2, 40), "int32"), 8)) == 8  # All padding: keep 1+.
    holes = np.zeros((1, 40), "int32")
    holes[0, [0, 3, 20]] = 1  # A real token after padding still counts.
    assert int(trimmed_length(holes, 1)) == 21


def test_trim_and_restore_layers():
    layer = TrimPadding(multiple_of=4, name="trim")
    assert_config_complete(layer)
    mask = np.array([[1, 1, 1, 0, 0, 0, 0, 0, 0]], "int32")
    ids = np.arange(9, dtype="int32")[None]
    t_mask, t_ids = layer([mask, ids])
    np.testing.assert_array_equal(t_ids, [[0, 1, 2, 3]])
    np.testing.assert_array_equal(t_mask, [[1, 1, 1, 0]])
    x = np.ones((1, 4, 2), "float32")
    restored = np.asarray(RestorePadding()([x, ids]))
    assert restored.shape == (1, 9, 2)
    assert restored[:, 4:].sum() == 0 and restored[:, :4].sum() == 8


def test_trim_passes_through_inside_xla():
    layer = TrimPadding(multiple_of=4)
    mask = tf.constant([[1, 1, 0, 0, 0, 0, 0, 0]])

    @tf.function(jit_compile=True)
    def run(mask):
        return layer([mask])[0]

    assert run(mask).shape == (1, 8)


def test_trim_batch_for_input_pipelines():
    inputs = {
        "input_word_ids": np.ones((2, 64), "int32"),
        "input_mask": np.concatenate([np.ones((2, 20)), np.zeros((2, 44))], 1).astype("int32"),
        "input_type_ids": np.zeros((2, 64), "int32"),
        "masked_lm_positions": np.ones((2, 5), "int32"),
    }
    trimmed = trim_batch(inputs, multiple_of=16)
    assert trimmed["input_word_ids"].shape == (2, 32)
    assert trimmed["masked_lm_positions"].shape == (2, 5)


def test_unpad_and_pad_tokens_round_trip():
    from bert_keras.layers import PadTokens, UnpadTokens

    mask = np.array([[1, 1, 0, 0], [1, 0, 1, 1]], "int32")
    x = np.arange(2 * 4 * 3, dtype="float32").reshape(2, 4, 3)
    x_flat, positions, inverse = UnpadTokens()([x, mask])
    np.testing.assert_array_equal(positions, [0, 1, 4, 6, 7])
    np.testing.assert_array_equal(x_flat, x.reshape(8, 3)[[0, 1, 4, 6, 7]])
    np.testing.assert_array_equal(inverse, [0, 1, 5, 5, 2, 5, 3, 4])  # 5 = N: padding.
    np.testing.assert_array_equal(PadTokens()([x_flat, inverse, mask]), x * mask[..., None])


def test_pack_and_unpack_rows_gradients_are_the_plain_gathers():
    from bert_keras.layers.padding import pack_rows, unpack_rows

    mask = np.array([[1, 1, 0, 0], [1, 0, 1, 1]], "int32")
    x = tf.constant(np.random.default_rng(0).normal(size=(8, 3)).astype("float32"))
    _, positions, inverse = UnpadTokens()([tf.reshape(x, (2, 4, 3)), mask])
    weights = tf.constant(np.random.default_rng(1).normal(size=(5, 3)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        packed = pack_rows(x, positions, inverse)  # (N, 3)
        plain = tf.gather(x, positions)
        packed_loss = tf.reduce_sum(packed * weights)
        plain_loss = tf.reduce_sum(plain * weights)
    np.testing.assert_array_equal(packed, plain)
    np.testing.assert_array_equal(
        tape.gradient(packed_loss, x), tf.convert_to_tensor(tape.gradient(plain_loss, x))
    )

    rows = tf.constant(np.random.default_rng(2).normal(size=(5, 3)).astype("float32"))
    out_weights = tf.constant(np.random.default_rng(3).normal(size=(8, 3)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(rows)
        unpacked = unpack_rows(rows, positions, inverse)  # (B * L, 3), zeros at padding
        plain = tf.gather(tf.concat([rows, tf.zeros((1, 3))], 0), inverse)
        unpacked_loss = tf.reduce_sum(unpacked * out_weights)
        plain_loss = tf.reduce_sum(plain * out_weights)
    np.testing.assert_array_equal(unpacked, plain)
    np.testing.assert_array_equal(
        tape.gradient(unpacked_loss, rows), tf.convert_to_tensor(tape.gradient(plain_loss, rows))
    )


def test_pack_rows_of_a_batch_without_padding_is_the_identity():
    from bert_keras.layers.padding import pack_rows, unpack_rows

    x = tf.constant(np.random.default_rng(0).normal(size=(2, 4, 3)).astype("float32"))
    flat, positions, inverse = UnpadTokens()([x, np.ones((2, 4), "int32")])
    np.testing.assert_array_equal(flat, tf.reshape(x, (8, 3)))
    rows = tf.reshape(x, (8, 3))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(rows)
        packed = pack_rows(rows, positions, inverse)
        unpacked = unpack_rows(rows, positions, inverse)
        loss = tf.reduce_sum(packed * 2.0) + tf.reduce_sum(unpacked * 3.0)
    np.testing.assert_array_equal(packed, rows)
    np.testing.assert_array_equal(unpacked, rows)
    np.testing.assert_array_equal(tape.gradient(loss, rows), np.full((8, 3), 5.0, "float32"))

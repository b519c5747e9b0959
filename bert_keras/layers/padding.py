"""Skipping the computation on padding, at two levels.

1. Per batch: trim the batch to its longest real sequence, pad the outputs back after.
2. Per token: `UnpadTokens` packs the real tokens of the (trimmed) batch into one (N, D)
   matrix, so the projections, feed-forward layers and LayerNorms (>90% of the encoder FLOPs
   at T=128) run on real tokens only; only the attention scores need the (B, L) layout,
   and `pad_tokens` gathers the packed rows back into it. On batches shaped like GB's
   records most rows are full, so the batch-level trim rarely helps there; this one does.

A batch of records padded to T whose longest real sequence ends at position L <= T gives
exactly the same outputs at every position < L when the encoder runs on the first L
positions only: attention never attends to padded keys, and every other op is per position.
Trimming to L rounded up to a multiple of `multiple_of` bounds the number of shapes (and
XLA compilations, when trimming happens in the input pipeline instead).

Inside an XLA cluster (`jit_compile=True`) shapes must be static, so `TrimPadding` passes
the batch through unchanged there, and `UnpadTokens` keeps all B * L rows (a reshape);
trim in the input pipeline with `trim_batch` instead.
"""

from __future__ import annotations

import keras
from keras import ops


def in_xla_context() -> bool:
    """True while tracing inside an XLA cluster (`jit_compile=True`), where shapes are static."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_util

    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def trimmed_length(input_mask, multiple_of: int = 16):
    """The length to keep: last real position + 1 over the batch, rounded up, <= T.

    `input_mask` (B, T) int, nonzero at real tokens -> int32 scalar in [1, T].
    """
    seq_len = ops.shape(input_mask)[1]
    positions = ops.arange(1, seq_len + 1, dtype="int32")  # (T,)
    ends = ops.where(ops.not_equal(input_mask, 0), positions[None, :], 0)  # (B, T)
    longest = ops.maximum(ops.max(ends), 1)
    rounded = (longest + multiple_of - 1) // multiple_of * multiple_of
    return ops.minimum(rounded, seq_len)


def trim_batch(inputs: dict, multiple_of: int = 16) -> dict:
    """Trims every (B, T) sequence feature of a model-input dict to `trimmed_length`.

    For `tf.data` (`dataset.map(lambda x, y: (trim_batch(x), y))`): with `jit_compile`
    each distinct length compiles once, at most T / multiple_of times.
    `masked_lm_positions` (B, P) is kept: its positions are real tokens, all < L.
    """
    length = trimmed_length(inputs["input_mask"], multiple_of)
    trimmed = dict(inputs)
    for name in ("input_word_ids", "input_mask", "input_type_ids"):
        trimmed[name] = inputs[name][:, :length]  # (B, L)
    return trimmed


@keras.saving.register_keras_serializable(package="bert_keras")
class TrimPadding(keras.layers.Layer):
    """[input_mask, *others] each (B, T) -> the same list cut to (B, L), see module doc."""

    def __init__(self, multiple_of=16, **kwargs):
        super().__init__(**kwargs)
        if int(multiple_of) < 1:
            raise ValueError(f"multiple_of must be >= 1, got {multiple_of}.")
        self.multiple_of = int(multiple_of)

    def call(self, inputs):
        if in_xla_context():
            return list(inputs)
        length = trimmed_length(inputs[0], self.multiple_of)
        return [ops.slice(x, (0, 0), (ops.shape(x)[0], length)) for x in inputs]

    def compute_output_shape(self, input_shape):
        return [(shape[0], None) for shape in input_shape]

    def get_config(self):
        config = super().get_config()
        config.update({"multiple_of": self.multiple_of})
        return config


@keras.saving.register_keras_serializable(package="bert_keras")
class RestorePadding(keras.layers.Layer):
    """[x (B, L, D), reference (B, T)] -> x zero-padded to (B, T, D)."""

    def call(self, inputs):
        x, reference = inputs
        missing = ops.shape(reference)[1] - ops.shape(x)[1]
        return ops.pad(x, [[0, 0], [0, missing], [0, 0]])

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        return (x_shape[0], reference_shape[1], x_shape[2])


@keras.saving.register_keras_serializable(package="bert_keras")
class UnpadTokens(keras.layers.Layer):
    """[x (B, L, D), mask (B, L)] -> [x_flat (N, D), positions (N,), inverse (B * L,)].

    `positions` are the flat indices (row * L + column) of the N real tokens; `inverse`
    maps every flat index to its row in x_flat, or to N (a zero row) for padding. Inside
    XLA, N = B * L and both are `arange` (see the module doc).
    """

    def call(self, inputs):
        x, mask = inputs
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        flat = ops.reshape(x, (-1, ops.shape(x)[2]))  # (B * L, D)
        if in_xla_context():
            everything = ops.arange(batch * length, dtype="int32")
            return [flat, everything, everything]
        real = ops.reshape(ops.not_equal(mask, 0), (-1,))  # (B * L,)
        import tensorflow as tf  # Dynamic-size boolean mask: TF only.

        positions = tf.cast(tf.where(real)[:, 0], "int32")  # (N,)
        count = ops.shape(positions)[0]
        inverse = ops.where(real, ops.cumsum(ops.cast(real, "int32")) - 1, count)  # (B * L,)
        inverse = ops.cast(inverse, "int32")
        return [pack_rows(flat, positions, inverse), positions, inverse]

    def compute_output_shape(self, input_shape):
        x_shape, _ = input_shape
        return [(None, x_shape[-1]), (None,), (None,)]


def _scatter_rows(x_flat, inverse):
    """(N, ...) -> (B * L, ...): row i of the result is x_flat[inverse[i]], or 0 if == N."""
    zero_row = ops.zeros((1,) + tuple(ops.shape(x_flat)[1:]), dtype=x_flat.dtype)  # Also if N == 0.
    padded = ops.concatenate([x_flat, zero_row], axis=0)  # (N + 1, ...)
    return ops.take(padded, inverse, axis=0)


def _pack_rows_tf(flat, positions, inverse):
    import tensorflow as tf

    # A batch without padding (every full-length row of GB's records) packs to itself: skip
    # the gathers then (tf.cond runs one branch).
    dense = tf.equal(tf.shape(positions)[0], tf.shape(inverse)[0])

    @tf.custom_gradient
    def pack(flat):
        def grad(upstream):  # (N, ...) -> (B * L, ...); padding rows get 0.
            return tf.cond(dense, lambda: upstream, lambda: _scatter_rows(upstream, inverse))

        return tf.cond(dense, lambda: flat, lambda: tf.gather(flat, positions)), grad

    return pack(flat)


def _unpack_rows_tf(x_flat, positions, inverse):
    import tensorflow as tf

    dense = tf.equal(tf.shape(positions)[0], tf.shape(inverse)[0])

    @tf.custom_gradient
    def unpack(x_flat):
        def grad(upstream):  # (B * L, ...) -> (N, ...): each real row comes from one place.
            return tf.cond(dense, lambda: upstream, lambda: tf.gather(upstream, positions))

        return tf.cond(dense, lambda: x_flat, lambda: _scatter_rows(x_flat, inverse)), grad

    return unpack(x_flat)


def pack_rows(flat, positions, inverse):
    """(B * L, ...) -> the (N, ...) rows at `positions`.

    `positions` (N,) and `inverse` (B * L,) are `UnpadTokens`' index pair. The gradient is a
    gather through `inverse` (TF backend), not the scatter-add (`UnsortedSegmentSum` into
    B * L rows) that the gradient of a plain gather becomes: measured, see
    `benchmarks/model_step.py`.
    """
    if keras.backend.backend() == "tensorflow":
        return _pack_rows_tf(flat, positions, inverse)
    return ops.take(flat, positions, axis=0)


def unpack_rows(x_flat, positions, inverse):
    """(N, ...) -> (B * L, ...), zeros at padding; the inverse of `pack_rows`.

    Forward: a gather of the N rows and one zero row through `inverse`; gradient: a gather
    through `positions` (TF backend), again instead of a scatter-add.
    """
    if keras.backend.backend() == "tensorflow":
        return _unpack_rows_tf(x_flat, positions, inverse)
    return _scatter_rows(x_flat, inverse)


def pad_tokens(x_flat, inverse, batch, length, positions=None):
    """(N, ...) packed rows -> (B, L, ...), zeros at padding. Inside XLA: a reshape.

    With `positions` (N,) the gradient is a gather (see `unpack_rows`).
    """
    rest = tuple(ops.shape(x_flat)[1:])
    if in_xla_context():
        return ops.reshape(x_flat, (batch, length) + rest)
    if positions is None:
        rows = _scatter_rows(x_flat, inverse)
    else:
        rows = unpack_rows(x_flat, positions, inverse)
    return ops.reshape(rows, (batch, length) + rest)  # (B, L, ...)


def unpad_tokens(x, positions, inverse=None):
    """(B, L, ...) -> the (N, ...) rows at `positions`. Inside XLA: a reshape.

    With `inverse` (B * L,) the gradient is a gather (see `pack_rows`).
    """
    flat = ops.reshape(x, (-1,) + tuple(ops.shape(x)[2:]))  # (B * L, ...)
    if in_xla_context():
        return flat
    if inverse is None:
        return ops.take(flat, positions, axis=0)
    return pack_rows(flat, positions, inverse)


@keras.saving.register_keras_serializable(package="bert_keras")
class PadTokens(keras.layers.Layer):
    """[x_flat (N, D), inverse (B * L,), mask (B, L)(, positions (N,))] -> (B, L, D).

    Zeros at padding. With `positions` (from `UnpadTokens`) the gradient is a gather.
    """

    def call(self, inputs):
        x_flat, inverse, mask = inputs[:3]
        positions = inputs[3] if len(inputs) > 3 else None
        return pad_tokens(x_flat, inverse, ops.shape(mask)[0], ops.shape(mask)[1], positions)

    def compute_output_shape(self, input_shape):
        x_shape, _, mask_shape = input_shape[:3]
        return (mask_shape[0], mask_shape[1], x_shape[-1])

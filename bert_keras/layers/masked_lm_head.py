"""The masked-LM head: keras-hub's `MaskedLMHead` with float32 logits."""

from __future__ import annotations

import keras
from keras import ops
from keras_hub.layers import MaskedLMHead


@keras.saving.register_keras_serializable(package="bert_keras")
class BertMaskedLMHead(MaskedLMHead):
    """Gather at the masked positions, dense + activation + LayerNorm, tied projection + bias.

    keras-hub's layer holds the weights GB's `cls/predictions/*` map to; its `call` adds the
    float32 output bias to logits in the compute dtype, which fails under `mixed_float16`
    and `mixed_bfloat16` ("expected a half tensor but is a float tensor"). This `call` does
    the projection in the compute dtype and the bias add in float32.

    Call: `inputs` (B, T, D), `mask_positions` (B, P) int -> logits (B, P, V) float32.
    """

    def call(self, inputs, mask_positions):
        x = ops.take_along_axis(inputs, ops.expand_dims(mask_positions, -1), axis=1)  # (B, P, D)
        x = self._intermediate_layer_norm(self._intermediate_dense(x))  # (B, P, D)
        embedding = self.token_embedding
        if embedding is not None and _plain_tied(embedding):
            # x (B, P, D) . embeddings (V, D)^T as one matmul with transpose_b, not a matmul
            # on ops.transpose(embeddings) as the embedding's reverse call does: that copies
            # the (V, D) table forward and again for the gradient (measured: see
            # benchmarks/model_step.py).
            rows = ops.reshape(x, (-1, ops.shape(x)[-1]))  # (B * P, D)
            logits = _matmul_transpose_b(rows, ops.cast(embedding.embeddings, x.dtype))
            logits = ops.reshape(logits, tuple(ops.shape(x)[:-1]) + (-1,))  # (B, P, V)
        elif embedding is not None:
            logits = embedding(x, reverse=True)  # (B, P, V)
        else:
            logits = ops.matmul(x, ops.cast(self._kernel, x.dtype))
        logits = ops.cast(logits, "float32") + ops.cast(self._bias, "float32")
        if self.activation is not None:
            logits = self.activation(logits)
        return logits

    def compute_output_spec(self, inputs, mask_positions):
        shape = tuple(mask_positions.shape) + (self.vocabulary_size,)
        return keras.KerasTensor(shape, dtype="float32")


def _plain_tied(embedding) -> bool:
    """A `ReversibleEmbedding` whose reverse call is exactly x . embeddings^T."""
    return (
        getattr(embedding, "tie_weights", False)
        and getattr(embedding, "reverse_dtype", None) is None
        and getattr(embedding, "logit_soft_cap", None) is None
        and getattr(embedding, "quantization_mode", None) is None
        and not getattr(embedding, "lora_enabled", False)
    )


def _matmul_transpose_b(a, b):
    """a (M, K) . b (N, K)^T -> (M, N)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.linalg.matmul(a, b, transpose_b=True)
    return ops.matmul(a, ops.transpose(b))

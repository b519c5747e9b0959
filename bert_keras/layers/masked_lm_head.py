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
        if self.token_embedding is not None:
            logits = self.token_embedding(x, reverse=True)  # (B, P, V)
        else:
            logits = ops.matmul(x, ops.cast(self._kernel, x.dtype))
        logits = ops.cast(logits, "float32") + ops.cast(self._bias, "float32")
        if self.activation is not None:
            logits = self.activation(logits)
        return logits

    def compute_output_spec(self, inputs, mask_positions):
        shape = tuple(mask_positions.shape) + (self.vocabulary_size,)
        return keras.KerasTensor(shape, dtype="float32")

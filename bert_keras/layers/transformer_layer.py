"""One BERT Transformer block: keras-hub's `TransformerEncoder` with GB's two dropout rates."""

from __future__ import annotations

import keras
from keras import ops
from keras_hub.layers import TransformerEncoder

from bert_keras.layers.activations import get_activation
from bert_keras.layers.padding import in_xla_context, pack_rows, pad_tokens


@keras.saving.register_keras_serializable(package="bert_keras")
class BertTransformerLayer(TransformerEncoder):
    """Self-attention + GELU feed-forward block with residuals (post-LN, or pre-LN if asked).

    keras-hub's layer carries the checkpoint weights (query/key/value kernels (D, N, H),
    output kernel (N, H, D), two LayerNorms, two dense layers) and is used as is. It has a
    single `dropout`; GB drops attention probabilities at `attention_probs_dropout_prob`
    and hidden states at `hidden_dropout_prob`, so this subclass sets the attention rate
    separately after the parent builds its `MultiHeadAttention`.

    Call: `x` (B, T, D), `padding_mask` (B, T) -> (B, T, D); or, packed (see
    `bert_keras/layers/padding.py`), `x` (N, D) real tokens only with `token_positions`
    (N,) and `token_inverse` (B * T,) from `UnpadTokens` -> (N, D). The packed form runs
    the dense layers and LayerNorms on the N real tokens only, with the same weights.
    """

    def __init__(
        self,
        intermediate_dim,
        num_heads,
        dropout=0.0,
        attention_dropout=0.0,
        hidden_act="gelu",
        layer_norm_epsilon=1e-12,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        normalize_first=False,
        **kwargs,
    ):
        kwargs.pop("activation", None)  # Set from `hidden_act`, which is what we serialise.
        super().__init__(
            intermediate_dim=intermediate_dim,
            num_heads=num_heads,
            dropout=dropout,
            activation=get_activation(hidden_act),
            layer_norm_epsilon=layer_norm_epsilon,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            normalize_first=normalize_first,
            **kwargs,
        )
        self.hidden_act = hidden_act
        self.attention_dropout = attention_dropout

    def build(self, inputs_shape):
        if len(inputs_shape) == 2:  # Packed (N, D) input: the sublayers want (B, T, D).
            inputs_shape = (None, None, inputs_shape[-1])
        super().build(inputs_shape)
        attention = self._self_attention_layer
        # MultiHeadAttention reads `_dropout` in call() and owns `_dropout_layer`.
        attention._dropout = self.attention_dropout
        attention._dropout_layer.rate = self.attention_dropout

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        token_positions=None,
        token_inverse=None,
    ):
        if token_positions is None:
            return super().call(
                inputs,
                padding_mask=padding_mask,
                attention_mask=attention_mask,
                training=training,
                return_attention_scores=return_attention_scores,
            )
        if attention_mask is not None or return_attention_scores:
            raise ValueError("The packed form takes only a padding_mask.")
        if in_xla_context():
            # Under XLA the "packed" rows are all B * L tokens (see padding.py): the parent's
            # (B, L, D) computation is the same and measured faster there (CPU time per step
            # 2.2 s vs 2.8 s, mini b32 s128).
            batch, length = ops.shape(padding_mask)[0], ops.shape(padding_mask)[1]
            x = ops.reshape(inputs, (batch, length, ops.shape(inputs)[-1]))  # (B, L, D)
            x = super().call(x, padding_mask=padding_mask, training=training)
            return ops.reshape(x, (batch * length, ops.shape(x)[-1]))  # (B * L, D)
        return self._call_packed(inputs, padding_mask, token_positions, token_inverse, training)

    def _call_packed(self, x, padding_mask, positions, inverse, training):
        """x (N, D) -> (N, D); the same computation as the parent's call on real tokens.

        The query, key and value projections run as one (N, D) x (D, 3 * D) matmul on the
        three kernels side by side, the attention as batched matmuls in the (B, Nh, L, H)
        layout, and the output projection as one (N, D) x (D, D) matmul; measured faster
        than the per-projection `EinsumDense` calls (see `benchmarks/model_step.py`).
        LoRA or quantized projections fall back to calling the `EinsumDense` layers.
        """
        attention = self._self_attention_layer
        batch, length = ops.shape(padding_mask)[0], ops.shape(padding_mask)[1]
        heads, head_dim = attention._num_heads, attention._key_dim
        residual = x
        if self.normalize_first:
            x = self._self_attention_layer_norm(x)
        projections = (attention._query_dense, attention._key_dense, attention._value_dense)
        fused = all(_is_plain(dense) for dense in (*projections, attention._output_dense))
        if fused:
            kernel = ops.concatenate(
                [
                    ops.reshape(ops.cast(d.kernel, x.dtype), (-1, heads * head_dim))
                    for d in projections
                ],
                axis=1,
            )  # (D, 3 * Nh * H)
            bias = ops.concatenate(
                [ops.reshape(ops.cast(d.bias, x.dtype), (-1,)) for d in projections], axis=0
            )  # (3 * Nh * H,)
            qkv = ops.matmul(x, kernel) + bias  # (N, 3 * Nh * H)
            qkv = pad_tokens(qkv, inverse, batch, length, positions)  # (B, L, 3 * Nh * H)
            qkv = ops.reshape(qkv, (batch, length, 3, heads, head_dim))
            query, key, value = ops.unstack(ops.transpose(qkv, (2, 0, 3, 1, 4)))  # (B, Nh, L, H)
        else:
            rows = ops.expand_dims(x, 0)  # (1, N, D): EinsumDense wants a batch axis.
            query, key, value = (
                ops.transpose(
                    pad_tokens(ops.squeeze(dense(rows), 0), inverse, batch, length, positions),
                    (0, 2, 1, 3),
                )  # (B, Nh, L, H)
                for dense in projections
            )
        query = ops.multiply(query, ops.cast(attention._inverse_sqrt_key_dim, query.dtype))
        scores = ops.matmul(query, ops.swapaxes(key, -1, -2))  # (B, Nh, L, L)
        # keras' masked Softmax selects twice (-1e9 at padded keys, then 0 there); adding the
        # same -1e9 gives the same probabilities (exp underflows to exactly 0) in one pass.
        padded = 1 - ops.cast(padding_mask[:, None, None, :], scores.dtype)  # (B, 1, 1, L)
        probs = ops.softmax(scores + padded * _large_negative(scores.dtype), axis=-1)
        probs = attention._dropout_layer(probs, training=training)
        context = ops.matmul(probs, value)  # (B, Nh, L, H)
        context = ops.reshape(
            ops.transpose(context, (0, 2, 1, 3)), (batch * length, heads * head_dim)
        )  # (B * L, Nh * H)
        context = pack_rows(context, positions, inverse)  # (N, Nh * H)
        output_dense = attention._output_dense
        if fused:
            out_kernel = ops.reshape(ops.cast(output_dense.kernel, x.dtype), (heads * head_dim, -1))
            x = ops.matmul(context, out_kernel) + ops.cast(output_dense.bias, x.dtype)  # (N, D)
        else:
            context = ops.reshape(context, (1, -1, heads, head_dim))  # (1, N, Nh, H)
            x = ops.squeeze(output_dense(context), 0)  # (N, D)
        x = self._self_attention_dropout(x, training=training) + residual
        if not self.normalize_first:
            x = self._self_attention_layer_norm(x)
        residual = x
        if self.normalize_first:
            x = self._feedforward_layer_norm(x)
        x = self._feedforward_output_dense(self._feedforward_intermediate_dense(x))  # (N, D)
        x = self._feedforward_dropout(x, training=training) + residual
        if not self.normalize_first:
            x = self._feedforward_layer_norm(x)
        return x

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.pop("activation")
        config.update({"attention_dropout": self.attention_dropout, "hidden_act": self.hidden_act})
        return config


def _is_plain(dense) -> bool:
    """An `EinsumDense` whose call is exactly `einsum(x, kernel) + bias` (no LoRA,
    quantization or activation), so its kernel can be used as a plain matrix."""
    return (
        not getattr(dense, "lora_enabled", False)
        and getattr(dense, "quantization_mode", None) is None
        and dense.activation in (None, keras.activations.linear)
        and dense.bias is not None
    )


def _large_negative(dtype) -> float:
    """keras' Softmax mask value: -1e9, or -3e4 where -1e9 overflows (float16)."""
    return -3e4 if keras.backend.standardize_dtype(dtype) == "float16" else -1e9

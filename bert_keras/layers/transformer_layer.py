"""One BERT Transformer block: keras-hub's `TransformerEncoder` with GB's two dropout rates."""

from __future__ import annotations

import keras
from keras_hub.layers import TransformerEncoder

from bert_keras.layers.activations import get_activation


@keras.saving.register_keras_serializable(package="bert_keras")
class BertTransformerLayer(TransformerEncoder):
    """Self-attention + GELU feed-forward block with residuals (post-LN, or pre-LN if asked).

    keras-hub's layer carries the checkpoint weights (query/key/value kernels (D, N, H),
    output kernel (N, H, D), two LayerNorms, two dense layers) and is used as is. It has a
    single `dropout`; GB drops attention probabilities at `attention_probs_dropout_prob`
    and hidden states at `hidden_dropout_prob`, so this subclass sets the attention rate
    separately after the parent builds its `MultiHeadAttention`.

    Call: `x` (B, T, D), `padding_mask` (B, T) -> (B, T, D).
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
        super().build(inputs_shape)
        attention = self._self_attention_layer
        # MultiHeadAttention reads `_dropout` in call() and owns `_dropout_layer`.
        attention._dropout = self.attention_dropout
        attention._dropout_layer.rate = self.attention_dropout

    def get_config(self):
        config = super().get_config()
        config.pop("activation")
        config.update({"attention_dropout": self.attention_dropout, "hidden_act": self.hidden_act})
        return config

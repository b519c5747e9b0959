"""`BertEncoder`: embeddings, a stack of Transformer blocks and the pooler, as a Keras model.

Dimensions: B batch, T sequence, D hidden, V vocabulary.
Inputs and outputs are named as TF-Hub BERT encoders name them.
"""

from __future__ import annotations

import keras
from keras import ops
from keras_hub.layers import PositionEmbedding

from bert_keras.layers.padding import PadTokens, RestorePadding, TrimPadding, UnpadTokens
from bert_keras.layers.transformer_layer import BertTransformerLayer
from bert_keras.models.checkpoint_tracking import NamedCheckpointChildren


def truncated_normal(stddev: float) -> keras.initializers.Initializer:
    """GB's initializer: normal with stddev `initializer_range`, cut at 2 stddev."""
    return keras.initializers.TruncatedNormal(stddev=stddev)


@keras.saving.register_keras_serializable(package="bert_keras")
class BertEncoder(NamedCheckpointChildren, keras.Model):
    """BERT encoder. Constructor arguments are `BertConfig`'s fields, plus:

    Args:
        trim_padding: if True, run the embeddings and Transformer blocks only on the first
            L positions of the batch (L = longest real sequence, rounded up to
            `trim_multiple_of`) and zero-pad the outputs back to T. Outputs at real
            positions are unchanged; positions past L read 0 instead of values computed
            from padding. Off inside XLA (see `bert_keras/layers/padding.py`).
        trim_multiple_of: the rounding of L.
        pack_tokens: if True, the Transformer blocks run their dense layers and LayerNorms
            on the real tokens only, packed into one (N, D) matrix (the attention scores
            still use the (B, L) layout). Outputs at padding positions read 0. Off inside
            XLA (see `bert_keras/layers/padding.py`).

    Inputs: dict of int32 (B, T): `input_word_ids`, `input_mask` (1 real, 0 padding),
    `input_type_ids`.
    Outputs: dict `sequence_output` (B, T, D), `pooled_output` (B, D) (dense + tanh on the
    first token), `encoder_outputs` list of `num_hidden_layers` (B, T, D).
    """

    def __init__(
        self,
        vocab_size=30522,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=512,
        type_vocab_size=2,
        initializer_range=0.02,
        layer_norm_epsilon=1e-12,
        norm_first=False,
        trim_padding=True,
        trim_multiple_of=16,
        pack_tokens=True,
        dtype=None,
        **kwargs,
    ):
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"hidden_size={hidden_size} is not a multiple of "
                f"num_attention_heads={num_attention_heads}."
            )
        # === Layers ===
        self.token_embedding = keras.layers.ReversibleEmbedding(
            input_dim=vocab_size,
            output_dim=hidden_size,
            embeddings_initializer=truncated_normal(initializer_range),
            dtype=dtype,
            name="token_embedding",
        )
        self.position_embedding = PositionEmbedding(
            sequence_length=max_position_embeddings,
            initializer=truncated_normal(initializer_range),
            dtype=dtype,
            name="position_embedding",
        )
        self.segment_embedding = keras.layers.Embedding(
            input_dim=type_vocab_size,
            output_dim=hidden_size,
            embeddings_initializer=truncated_normal(initializer_range),
            dtype=dtype,
            name="segment_embedding",
        )
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="embeddings_layer_norm"
        )
        self.embeddings_dropout = keras.layers.Dropout(
            hidden_dropout_prob, dtype=dtype, name="embeddings_dropout"
        )
        self.transformer_layers = [
            BertTransformerLayer(
                intermediate_dim=intermediate_size,
                num_heads=num_attention_heads,
                dropout=hidden_dropout_prob,
                attention_dropout=attention_probs_dropout_prob,
                hidden_act=hidden_act,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=truncated_normal(initializer_range),
                normalize_first=norm_first,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_hidden_layers)
        ]
        for i, layer in enumerate(self.transformer_layers):  # Checkpoint names, see mixin.
            setattr(self, f"transformer_layer_{i}", layer)
        # Pre-LN stacks end without a norm; this is the usual final LayerNorm for them.
        self.final_layer_norm = (
            keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=dtype, name="final_layer_norm"
            )
            if norm_first
            else None
        )
        self.pooler_dense = keras.layers.Dense(
            hidden_size,
            activation="tanh",
            kernel_initializer=truncated_normal(initializer_range),
            dtype=dtype,
            name="pooler_dense",
        )
        self.trim = TrimPadding(trim_multiple_of, name="trim_padding") if trim_padding else None
        self.restore = RestorePadding(name="restore_padding") if trim_padding else None
        self.unpad = UnpadTokens(name="unpad_tokens") if pack_tokens else None
        self.pad = PadTokens(name="pad_tokens") if pack_tokens else None

        # === Functional Model ===
        word_ids = keras.Input(shape=(None,), dtype="int32", name="input_word_ids")
        mask = keras.Input(shape=(None,), dtype="int32", name="input_mask")
        type_ids = keras.Input(shape=(None,), dtype="int32", name="input_type_ids")
        if self.trim is not None:
            t_mask, t_word_ids, t_type_ids = self.trim([mask, word_ids, type_ids])  # (B, L)
        else:
            t_mask, t_word_ids, t_type_ids = mask, word_ids, type_ids
        tokens = self.token_embedding(t_word_ids)  # (B, L, D)
        x = self.embeddings_add(
            [tokens, self.position_embedding(tokens), self.segment_embedding(t_type_ids)]
        )
        x = self.embeddings_dropout(self.embeddings_layer_norm(x))  # (B, L, D)
        layer_outputs = []
        if self.unpad is not None:
            x, positions, inverse = self.unpad([x, t_mask])  # (N, D), (N,), (B * L,)
            packed = {"token_positions": positions, "token_inverse": inverse}
        else:
            packed = {}
        for layer in self.transformer_layers:
            x = layer(x, padding_mask=t_mask, **packed)  # (B, L, D) or packed (N, D)
            layer_outputs.append(x)
        if self.final_layer_norm is not None:
            x = self.final_layer_norm(x)
            layer_outputs[-1] = x
        if self.pad is not None:
            layer_outputs = [
                self.pad([y, inverse, t_mask, positions]) for y in layer_outputs
            ]  # (B, L, D)
            x = layer_outputs[-1]
        pooled = self.pooler_dense(x[:, 0, :])  # (B, D)
        if self.restore is not None:
            layer_outputs = [self.restore([y, word_ids]) for y in layer_outputs]  # (B, T, D)
        super().__init__(
            inputs={"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids},
            outputs={
                "sequence_output": layer_outputs[-1],
                "pooled_output": pooled,
                "encoder_outputs": layer_outputs,
            },
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_epsilon = layer_norm_epsilon
        self.norm_first = norm_first
        self.trim_padding = trim_padding
        self.trim_multiple_of = trim_multiple_of
        self.pack_tokens = pack_tokens

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        if self.dtype_policy.name != keras.config.dtype_policy().name:
            config["dtype"] = keras.dtype_policies.serialize(self.dtype_policy)
        config.update(
            {
                "vocab_size": self.vocab_size,
                "hidden_size": self.hidden_size,
                "num_hidden_layers": self.num_hidden_layers,
                "num_attention_heads": self.num_attention_heads,
                "intermediate_size": self.intermediate_size,
                "hidden_act": self.hidden_act,
                "hidden_dropout_prob": self.hidden_dropout_prob,
                "attention_probs_dropout_prob": self.attention_probs_dropout_prob,
                "max_position_embeddings": self.max_position_embeddings,
                "type_vocab_size": self.type_vocab_size,
                "initializer_range": self.initializer_range,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "norm_first": self.norm_first,
                "trim_padding": self.trim_padding,
                "trim_multiple_of": self.trim_multiple_of,
                "pack_tokens": self.pack_tokens,
            }
        )
        return config

    @classmethod
    def from_bert_config(cls, config, **kwargs) -> BertEncoder:
        """`BertEncoder(**dataclasses.asdict(config), **kwargs)`."""
        return cls(**config.to_dict(), **kwargs)

    def dummy_inputs(self, batch_size: int = 2, seq_length: int = 8) -> dict:
        """Int32 inputs of shape (batch_size, seq_length), for building and shape checks."""
        ones = ops.ones((batch_size, seq_length), dtype="int32")
        return {"input_word_ids": ones, "input_mask": ones, "input_type_ids": ones * 0}

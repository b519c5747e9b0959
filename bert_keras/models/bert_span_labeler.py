"""`BertSpanLabeler`: start/end logits for extractive question answering (SQuAD)."""

from __future__ import annotations

import keras
from keras import ops

from bert_keras.models.bert_encoder import truncated_normal
from bert_keras.models.checkpoint_tracking import NamedCheckpointChildren


@keras.saving.register_keras_serializable(package="bert_keras")
class BertSpanLabeler(NamedCheckpointChildren, keras.Model):
    """A dense layer to 2 logits per position of `sequence_output`, split into start/end.

    Args:
        encoder: a `BertEncoder`.
        initializer_range: stddev of the head's truncated normal init; None: the encoder's.

    Inputs: the encoder's inputs. Outputs: `start_logits`, `end_logits` (B, T) float32.
    Padding positions are not masked here (as in GB's run_squad.py); the decoder of answers
    only considers positions inside the context.
    """

    def __init__(self, encoder, initializer_range=None, **kwargs):
        stddev = encoder.initializer_range if initializer_range is None else initializer_range
        # === Layers ===
        self.encoder = encoder
        self.span_dense = keras.layers.Dense(
            2,
            kernel_initializer=truncated_normal(stddev),
            dtype=encoder.dtype_policy,
            name="span_logits",
        )
        self.output_cast = keras.layers.Activation("linear", dtype="float32", name="logits_f32")

        # === Functional Model ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in ("input_word_ids", "input_mask", "input_type_ids")
        }
        sequence = encoder(inputs)["sequence_output"]  # (B, T, D)
        logits = self.output_cast(self.span_dense(sequence))  # (B, T, 2)
        start_logits, end_logits = ops.unstack(logits, num=2, axis=-1)  # (B, T) each
        super().__init__(
            inputs=inputs,
            outputs={"start_logits": start_logits, "end_logits": end_logits},
            **kwargs,
        )

        # === Config ===
        self.initializer_range = initializer_range

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "initializer_range": self.initializer_range,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)

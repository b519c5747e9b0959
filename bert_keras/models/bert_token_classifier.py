"""`BertTokenClassifier`: a label per token (NER, POS) on the sequence output."""

from __future__ import annotations

import keras

from bert_keras.models.bert_encoder import truncated_normal
from bert_keras.models.checkpoint_tracking import NamedCheckpointChildren


@keras.saving.register_keras_serializable(package="bert_keras")
class BertTokenClassifier(NamedCheckpointChildren, keras.Model):
    """Dropout + dense on every position of `sequence_output`.

    Args:
        encoder: a `BertEncoder`.
        num_classes: number of token labels.
        dropout_rate: dropout before the dense layer.
        initializer_range: stddev of the head's truncated normal init; None: the encoder's.

    Inputs: the encoder's inputs. Output: logits (B, T, num_classes) float32 (positions
    past the batch's longest sequence, which the encoder does not compute, get the bias).
    """

    def __init__(self, encoder, num_classes=2, dropout_rate=0.1, initializer_range=None, **kwargs):
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
        stddev = encoder.initializer_range if initializer_range is None else initializer_range
        # === Layers ===
        self.encoder = encoder
        self.dropout = keras.layers.Dropout(
            dropout_rate, dtype=encoder.dtype_policy, name="dropout"
        )
        self.output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=truncated_normal(stddev),
            dtype=encoder.dtype_policy,
            name="logits",
        )
        self.output_cast = keras.layers.Activation("linear", dtype="float32", name="logits_f32")

        # === Functional Model ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in ("input_word_ids", "input_mask", "input_type_ids")
        }
        sequence = encoder(inputs)["sequence_output"]  # (B, T, D)
        logits = self.output_cast(self.output_dense(self.dropout(sequence)))  # (B, T, C)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.dropout_rate = dropout_rate
        self.initializer_range = initializer_range

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "num_classes": self.num_classes,
            "dropout_rate": self.dropout_rate,
            "initializer_range": self.initializer_range,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)

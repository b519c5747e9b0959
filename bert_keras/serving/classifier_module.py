"""`ClassifierModule`: a fine-tuned `BertClassifier` for serving.

Dimensions: B batch, C classes.

Outputs of every signature (see `serving_module`):
- classification: `probabilities` (B, C) float32 (softmax over the classes, in label
  order), `label_ids` (B,) int32 (the argmax), `labels` (B,) string (its label),
  `logits` (B, C) float32;
- regression (one output unit): `scores` (B,) float32.
"""

from __future__ import annotations

import tensorflow as tf

from bert_keras.serving.serving_module import BertServingModule


class ClassifierModule(BertServingModule):
    """A `BertClassifier` with the serving signatures.

    Args:
        classifier: a `BertClassifier`.
        preprocessor: a `BertTextPreprocessor` for the raw-text `serving_default`.
        labels: the label strings, index i = class i (as fine-tuning numbered them); must
            have `classifier.num_classes` entries; None or [] for a regression model.
        num_segments: 1 (`text`) or 2 (`text_a`, `text_b`).
    """

    def __init__(self, classifier, preprocessor, labels=None, num_segments=1):
        encoder = classifier.encoder
        super().__init__(
            preprocessor=preprocessor,
            num_segments=num_segments,
            max_seq_length=preprocessor.packer.max_seq_length,
            vocab_size=encoder.vocab_size,
            type_vocab_size=encoder.type_vocab_size,
            max_position_embeddings=encoder.max_position_embeddings,
            name="bert_classifier",
        )
        self.classifier = classifier
        self.is_regression = classifier.num_classes == 1
        labels = list(labels or [])
        if self.is_regression:
            if labels:
                raise ValueError(f"A regression model (one output) takes no labels, got {labels}.")
        elif len(labels) != classifier.num_classes:
            raise ValueError(
                f"The classifier has {classifier.num_classes} classes but {len(labels)} labels "
                f"were given ({labels}); pass one label per class, in class-id order."
            )
        self.label_strings = [str(label) for label in labels]

    def outputs_from_tokens(self, inputs):
        logits = tf.cast(self.classifier(inputs, training=False), tf.float32)  # (B, C)
        if self.is_regression:
            return {"scores": logits[:, 0]}  # (B,)
        label_ids = tf.argmax(logits, axis=-1, output_type=tf.int32)  # (B,)
        return {
            "probabilities": tf.nn.softmax(logits, axis=-1),  # (B, C)
            "label_ids": label_ids,
            "labels": tf.gather(tf.constant(self.label_strings, tf.string), label_ids),  # (B,)
            "logits": logits,
        }

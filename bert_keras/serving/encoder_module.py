"""`EncoderModule`: a BERT encoder for serving, TF-Hub style.

Dimensions: B batch, T sequence, D hidden, L layers.

Signatures (see `serving_module`): `pooled_output` (B, D), `sequence_output` (B, T, D) and
`input_mask` (B, T) (which positions of `sequence_output` are real tokens).

Like a TF Hub BERT encoder, the loaded object is also callable on a dict of token inputs
and returns `pooled_output`, `sequence_output` and `encoder_outputs` (a list of L
(B, T, D)), so `encoder(preprocessor(text))` works with a preprocessor SavedModel.
"""

from __future__ import annotations

import tensorflow as tf

from bert_keras.serving import token_inputs
from bert_keras.serving.serving_module import BertServingModule


class EncoderModule(BertServingModule):
    """A `BertEncoder` with the serving signatures and a TF-Hub-style `__call__`.

    Args:
        encoder: a `BertEncoder`.
        preprocessor: a `BertTextPreprocessor` for a raw-text `serving_default`, or None
            (TF Hub's split: serve tokens, pair with a preprocessor SavedModel).
        num_segments: 1 or 2 text inputs.
        max_seq_length: T of the tf.Example path; None: the preprocessor's.
    """

    def __init__(self, encoder, preprocessor=None, num_segments=1, max_seq_length=None):
        if max_seq_length is None:
            if preprocessor is None:
                raise ValueError(
                    "EncoderModule needs max_seq_length when there is no preprocessor."
                )
            max_seq_length = preprocessor.packer.max_seq_length
        super().__init__(
            preprocessor=preprocessor,
            num_segments=num_segments,
            max_seq_length=max_seq_length,
            vocab_size=encoder.vocab_size,
            type_vocab_size=encoder.type_vocab_size,
            max_position_embeddings=encoder.max_position_embeddings,
            name="bert_encoder",
        )
        self.encoder = encoder
        specs = token_inputs.token_input_specs()
        self.__call__ = tf.function(self._call, input_signature=[specs], autograph=False)

    def _call(self, inputs):
        outputs = self.encoder(inputs, training=False)
        return {
            "pooled_output": outputs["pooled_output"],  # (B, D)
            "sequence_output": outputs["sequence_output"],  # (B, T, D)
            "encoder_outputs": list(outputs["encoder_outputs"]),  # L x (B, T, D)
        }

    def outputs_from_tokens(self, inputs):
        outputs = self.encoder(inputs, training=False)
        return {
            "pooled_output": outputs["pooled_output"],  # (B, D)
            "sequence_output": outputs["sequence_output"],  # (B, T, D)
            "input_mask": inputs["input_mask"],  # (B, T)
        }

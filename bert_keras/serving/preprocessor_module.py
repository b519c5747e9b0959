"""`PreprocessorModule`: text -> BERT token inputs, as a SavedModel of its own (TF Hub style).

Dimensions: B batch, T = `max_seq_length`, P pieces.

TF Hub splits BERT into a preprocessor and an encoder so one preprocessor serves several
encoders and an encoder can be fed by other code; this is our preprocessor half:

    preprocessor = tf.saved_model.load(".../bert_preprocessor/1")
    encoder = tf.saved_model.load(".../bert_encoder/1")      # exported without preprocessor
    outputs = encoder(preprocessor(tf.constant(["some text"])))

Signatures: `serving_default` (`text` (B,) string) and `pair` (`text_a`, `text_b`), each
-> `input_word_ids`, `input_mask`, `input_type_ids` int32 (B, T).
Functions of the loaded object (like TF Hub's): `__call__(text)`, the same as
`serving_default`; `tokenize(text)` -> RaggedTensor (B, (P)) int32 (TF Hub's has a words
dimension too; ours gives the pieces); `bert_pack_inputs([a])` / `bert_pack_inputs([a, b])`
on those ragged tensors -> the three tensors.
"""

from __future__ import annotations

import tensorflow as tf

from bert_keras.serving import text_inputs
from bert_keras.serving.export_module import KerasExportModule


class PreprocessorModule(KerasExportModule):
    """Text -> token inputs, TF Hub's preprocessor interface.

    Args:
        preprocessor: a `bert_keras.preprocessing.BertTextPreprocessor`.
    """

    def __init__(self, preprocessor):
        super().__init__(name="bert_preprocessor")
        self.preprocessor = preprocessor
        self.max_seq_length = int(preprocessor.packer.max_seq_length)
        single = list(text_inputs.text_input_specs(1).values())
        pair = list(text_inputs.text_input_specs(2).values())
        self.serve_text = tf.function(self._serve_text, input_signature=single, autograph=False)
        self.serve_pair = tf.function(self._serve_pair, input_signature=pair, autograph=False)
        self.__call__ = self.serve_text
        self.tokenize = tf.function(self._tokenize, input_signature=single, autograph=False)
        ragged = tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1)
        self.bert_pack_inputs = tf.function(self._pack, autograph=False)
        # Traced now so the SavedModel holds both arities.
        self.bert_pack_inputs.get_concrete_function([ragged])
        self.bert_pack_inputs.get_concrete_function([ragged, ragged])

    def _serve_text(self, text):
        return text_inputs.preprocess_text(self.preprocessor, [text])

    def _serve_pair(self, text_a, text_b):
        return text_inputs.preprocess_text(self.preprocessor, [text_a, text_b])

    def _tokenize(self, text):
        return tf.cast(self.preprocessor.tokenizer(text), tf.int32)  # (B, (P))

    def _pack(self, segments):
        packed = self.preprocessor.packer(list(segments))
        return {name: tf.cast(value, tf.int32) for name, value in packed.items()}

    def signatures(self) -> dict[str, tf.types.experimental.PolymorphicFunction]:
        return {
            "serving_default": self.serve_text,
            "pair": self.serve_pair,
        }

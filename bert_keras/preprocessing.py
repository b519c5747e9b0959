"""Packing WordPiece ids into BERT's model inputs, and raw text -> model inputs in one layer.

Layout `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`; `input_type_ids` 0 for `[CLS] A [SEP]`,
1 for `B [SEP]`; `input_mask` 1 on real tokens; padding with the pad id (type 0, mask 0).

Truncation rule (google-research/bert's `_truncate_seq_pair` for fine-tuning): while the
segments do not fit in `max_seq_length - (num_segments + 1)` tokens, drop the LAST token of
the currently longest segment (the later segment on ties). tensorflow-text's
`RoundRobinTrimmer` gives exactly these lengths (it hands out the budget one token per
segment in turn, first segment first); tests check it against a Python transcription of
the rule. `truncation="waterfall"` instead fills segments in order (A first, B gets the
rest), as TF Hub's preprocessors do with `bert_pack_inputs`.

Dimension legend: B batch, T max_seq_length, P pieces of one segment.
"""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from bert_keras.tokenization import RESERVED_TOKENS, BertWordPieceTokenizer

_TRIMMERS = {
    "round_robin": tf_text.RoundRobinTrimmer,
    "waterfall": tf_text.WaterfallTrimmer,
}


@keras.saving.register_keras_serializable(package="bert_keras")
class BertInputPacker(keras.layers.Layer):
    """Ragged piece ids (one or two segments) -> {input_word_ids, input_mask, input_type_ids}.

    Args:
      max_seq_length: T, the padded length (includes `[CLS]` and the `[SEP]`s).
      start_of_sequence_id, end_of_segment_id, padding_id: the ids of `[CLS]`, `[SEP]`
        and `[PAD]`; defaults are their indices in RESERVED_TOKENS (the layout of vocabs this
        project builds). Use `from_tokenizer` for any other vocab.
      truncation: "round_robin" (google-research/bert's rule, see module doc) or "waterfall".

    Call: a list of 1 or 2 RaggedTensors (B, (P)) or (B, (W), (P)) int -> dict of (B, T) int32.
    """

    def __init__(
        self,
        max_seq_length: int,
        start_of_sequence_id: int = RESERVED_TOKENS.index("[CLS]"),
        end_of_segment_id: int = RESERVED_TOKENS.index("[SEP]"),
        padding_id: int = RESERVED_TOKENS.index("[PAD]"),
        truncation: str = "round_robin",
        **kwargs,
    ):
        kwargs.setdefault("dtype", "int32")
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        if truncation not in _TRIMMERS:
            raise ValueError(f"truncation must be one of {sorted(_TRIMMERS)}, got {truncation!r}.")
        if max_seq_length < 3:
            raise ValueError(f"max_seq_length must be >= 3, got {max_seq_length}.")
        self.max_seq_length = int(max_seq_length)
        self.start_of_sequence_id = int(start_of_sequence_id)
        self.end_of_segment_id = int(end_of_segment_id)
        self.padding_id = int(padding_id)
        self.truncation = truncation
        self.built = True

    @classmethod
    def from_tokenizer(
        cls, tokenizer: BertWordPieceTokenizer, max_seq_length: int, **kwargs
    ) -> BertInputPacker:
        return cls(
            max_seq_length,
            start_of_sequence_id=tokenizer.cls_id,
            end_of_segment_id=tokenizer.sep_id,
            padding_id=tokenizer.pad_id,
            **kwargs,
        )

    def call(self, segments):
        if isinstance(segments, tf.RaggedTensor):
            segments = [segments]
        segments = list(segments)
        if not 1 <= len(segments) <= 2:
            raise ValueError(f"BertInputPacker takes 1 or 2 segments, got {len(segments)}.")
        flat = []
        for seg in segments:
            if seg.shape.rank == 3:
                seg = seg.merge_dims(1, 2)  # (B, (W), (P)) -> (B, (P))
            flat.append(tf.cast(seg, tf.int32))
        budget = self.max_seq_length - (len(flat) + 1)
        trimmed = _TRIMMERS[self.truncation](budget).trim(flat)  # list of (B, (P))
        ids, type_ids = tf_text.combine_segments(
            trimmed,
            start_of_sequence_id=self.start_of_sequence_id,
            end_of_segment_id=self.end_of_segment_id,
        )  # (B, (T')) each
        word_ids, mask = tf_text.pad_model_inputs(
            ids, self.max_seq_length, pad_value=self.padding_id
        )  # (B, T), (B, T)
        type_ids, _ = tf_text.pad_model_inputs(type_ids, self.max_seq_length, pad_value=0)
        return {
            "input_word_ids": tf.cast(word_ids, tf.int32),
            "input_mask": tf.cast(mask, tf.int32),
            "input_type_ids": tf.cast(type_ids, tf.int32),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_seq_length": self.max_seq_length,
                "start_of_sequence_id": self.start_of_sequence_id,
                "end_of_segment_id": self.end_of_segment_id,
                "padding_id": self.padding_id,
                "truncation": self.truncation,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="bert_keras")
class BertTextPreprocessor(keras.layers.Layer):
    """Raw text -> BERT inputs: tokenizer then packer, all TF ops.

    Call: one (B,) tf.string batch, or a list/tuple of two (sentence pairs)
    -> {input_word_ids, input_mask, input_type_ids} (B, T) int32.
    """

    def __init__(self, tokenizer: BertWordPieceTokenizer, packer: BertInputPacker, **kwargs):
        kwargs.setdefault("dtype", "int32")
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        if isinstance(tokenizer, dict):
            tokenizer = keras.saving.deserialize_keras_object(tokenizer)
        if isinstance(packer, dict):
            packer = keras.saving.deserialize_keras_object(packer)
        self.tokenizer = tokenizer
        self.packer = packer
        self.built = True

    @classmethod
    def from_vocabulary(
        cls, vocabulary, max_seq_length: int, lower_case: bool = True, **kwargs
    ) -> BertTextPreprocessor:
        tokenizer = BertWordPieceTokenizer(vocabulary, lower_case=lower_case)
        return cls(tokenizer, BertInputPacker.from_tokenizer(tokenizer, max_seq_length), **kwargs)

    def call(self, texts):
        if isinstance(texts, (list, tuple)):
            segments = [self.tokenizer(t) for t in texts]
        else:
            segments = [self.tokenizer(texts)]
        return self.packer(segments)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
                "packer": keras.saving.serialize_keras_object(self.packer),
            }
        )
        return config

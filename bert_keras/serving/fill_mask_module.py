"""`FillMaskModule`: a `BertPretrainer`'s masked-LM head for serving, as fill-mask.

Dimensions: B batch, T sequence, P masks per sequence (the most in the batch, at most
`max_masks`), K = `top_k`, V vocabulary.

The text is written with the literal `[MASK]` where a token is to be predicted ("the man
went to the [MASK] ."). Each `[MASK]` becomes one mask token whatever the tokenizer's
casing; the text around it is tokenized as usual. Token and tf.Example requests mark masks
with the `[MASK]` id.

Outputs of every signature (see `serving_module`):
- `mask_positions` (B, P) int32: the position of each mask in the packed sequence, -1 for
  an empty slot (a sequence with fewer masks than the batch's most, or none);
- `top_k_ids` (B, P, K) int32, `top_k_tokens` (B, P, K) string, `top_k_scores`
  (B, P, K) float32 (softmax probabilities over the vocabulary), best first; empty slots
  read -1, "" and 0.
Masks cut off by truncation to `max_seq_length` are not predicted.
"""

from __future__ import annotations

import tensorflow as tf

from bert_keras.serving.serving_module import BertServingModule

MASK_TOKEN = "[MASK]"


class FillMaskModule(BertServingModule):
    """A `BertPretrainer`'s masked-LM head with the serving signatures, as fill-mask.

    Args:
        pretrainer: a `BertPretrainer`.
        preprocessor: a `BertTextPreprocessor` (its tokenizer's vocabulary names the ids).
        num_segments: 1 (`text`) or 2 (`text_a`, `text_b`).
        top_k: predictions per mask.
        max_masks: masks predicted per sequence (the first ones), bounding the work.
    """

    def __init__(self, pretrainer, preprocessor, num_segments=1, top_k=5, max_masks=20):
        encoder = pretrainer.encoder
        super().__init__(
            preprocessor=preprocessor,
            num_segments=num_segments,
            max_seq_length=preprocessor.packer.max_seq_length,
            vocab_size=encoder.vocab_size,
            type_vocab_size=encoder.type_vocab_size,
            max_position_embeddings=encoder.max_position_embeddings,
            name="bert_fill_mask",
        )
        if int(top_k) < 1 or int(max_masks) < 1:
            raise ValueError(f"top_k={top_k} and max_masks={max_masks} must be >= 1.")
        self.pretrainer = pretrainer
        tokenizer = preprocessor.tokenizer
        self.vocabulary = list(tokenizer.vocabulary)
        self.mask_id = int(tokenizer.mask_id)
        self.top_k = min(int(top_k), len(self.vocabulary))
        self.max_masks = int(max_masks)

    def _tokenize_with_masks(self, text):
        """(B,) strings -> (B, (pieces)) int32, each literal `[MASK]` one mask id."""
        parts = tf.strings.split(text, sep=MASK_TOKEN)  # (B, (S)) strings, S >= 1
        pieces = tf.cast(self.preprocessor.tokenizer(parts.flat_values), tf.int32)  # (N, (p))
        # A mask follows every part but the last of its string.
        num_parts = tf.shape(parts.flat_values, out_type=tf.int64)[0]
        last_parts = parts.row_limits() - 1  # (B,)
        follows = tf.tensor_scatter_nd_update(
            tf.ones([num_parts], tf.int64),
            last_parts[:, None],
            tf.zeros_like(last_parts),
        )  # (N,) 1 if a mask follows the part
        masks = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(follows)], self.mask_id), follows
        )  # (N, (0 or 1))
        with_masks = tf.concat([pieces, masks], axis=1)  # (N, (p + 0 or 1))
        return parts.with_flat_values(with_masks).merge_dims(1, 2)  # (B, (pieces))

    def tokens_from_text(self, texts):
        segments = [self._tokenize_with_masks(t) for t in texts]
        packed = self.preprocessor.packer(segments)
        return {name: tf.cast(packed[name], tf.int32) for name in packed}

    def outputs_from_tokens(self, inputs):
        word_ids = inputs["input_word_ids"]  # (B, T)
        shape = tf.shape(word_ids)
        positions = tf.broadcast_to(tf.range(shape[1], dtype=tf.int32), shape)  # (B, T)
        mask_positions = tf.ragged.boolean_mask(positions, tf.equal(word_ids, self.mask_id))
        mask_positions = mask_positions.to_tensor(default_value=-1)[:, : self.max_masks]  # (B, P)
        valid = mask_positions >= 0  # (B, P)
        logits = self._mlm_logits(inputs, tf.maximum(mask_positions, 0))  # (B, P, V)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        top = tf.math.top_k(probabilities, k=self.top_k)  # (B, P, K)
        tokens = tf.gather(tf.constant(self.vocabulary, tf.string), top.indices)  # (B, P, K)
        valid_k = tf.broadcast_to(valid[:, :, None], tf.shape(top.indices))  # (B, P, K)
        return {
            "mask_positions": mask_positions,
            "top_k_ids": tf.where(valid_k, top.indices, -1),
            "top_k_tokens": tf.where(valid_k, tokens, ""),
            "top_k_scores": tf.where(valid_k, top.values, 0.0),
        }

    def _mlm_logits(self, inputs, positions):
        """The pretrainer's (B, P, V) logits; a batch of zero sequences or zero masks is run
        as one padding row / slot and cut back (the head's gather rejects empty shapes)."""
        batch_size, num_masks = tf.shape(positions)[0], tf.shape(positions)[1]
        extra_rows = tf.maximum(1 - batch_size, 0)
        # The padding row has one real token: the encoder needs at least one in a batch.
        model_inputs = {
            name: tf.pad(
                value, [[0, extra_rows], [0, 0]], constant_values=int(name == "input_mask")
            )
            for name, value in inputs.items()
        }
        model_inputs["masked_lm_positions"] = tf.pad(
            positions, [[0, extra_rows], [0, tf.maximum(1 - num_masks, 0)]]
        )
        logits = self.pretrainer(model_inputs, training=False)["mlm_logits"]
        return logits[:batch_size, :num_masks]

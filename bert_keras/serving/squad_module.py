"""`SquadModule`: a fine-tuned `BertSpanLabeler` answering questions on raw text.

`serving_default(question (B,) string, context (B,) string)` does everything in the graph
with `tensorflow` + `tensorflow_text` ops, as `bert_keras.squad` does in Python:

1. tokenize the question (cut to `max_query_length` pieces) and the passage (with byte
   offsets into the original passage);
2. cut the passage into google-research/bert's windows (`T - len(question) - 3` pieces,
   starting every `min(doc_stride, window)` pieces, the last ending at the passage's end;
   one empty window for an empty passage) and pack each as
   `[CLS] question [SEP] window [SEP]`, padded to T;
3. run the model on all windows of the batch at once;
4. pick, per question, the span with the highest start + end logit over its windows,
   among spans inside the passage, of at most `max_answer_length` pieces, starting at a
   piece the window has maximal context for (GB's rule). Python's `predict_answers` only
   pairs the `n_best_size` best starts and ends; the graph takes the exact maximum, so
   both agree whenever `n_best_size` >= T;
5. cut the answer out of the ORIGINAL passage bytes.

Outputs (B,): `answer` string, `score` float32 (start + end logit of the span; -inf when
the passage has no span, i.e. is empty), `answer_start`/`answer_end` int64 byte offsets
`[start, end)` into the UTF-8 passage, `null_odds` float32 (smallest `[CLS]` start + end
logit over the windows minus `score`) and `has_answer` bool. For a SQuAD 2.0 model
(`version_2_with_negative`), `answer` is "" and `has_answer` False when `null_odds`
exceeds `null_score_diff_threshold`; for a v1 model only an empty passage has no answer.
`answer_start`/`answer_end` locate the best span even when v2 answers "" (0, 0 when the
passage has no span; `null_odds` is then +inf).

`from_tokens` and `from_examples` (see `serving_module`) return the raw `start_logits`
and `end_logits` (B, T) of one window each, for clients that window themselves.

Every window of the batch is run at once: a passage of P pieces costs about
P / doc_stride windows (a 100,000-character passage at T=384, stride 128: some hundreds).

Export a SQuAD run and query it (TF Serving REST):

    python -m bert_keras.export --kind=squad --checkpoint=out/squad/final \
        --export_dir=out/serving            # -> out/serving/bert_squad/1/
    curl -d '{"signature_name": "serving_default", "inputs": {"question": ["Who built it?"],
              "context": ["The bridge was built in 1850 by Emile."]}}' \
        localhost:8501/v1/models/bert_squad:predict

Dimensions: B questions, W windows of the batch, T max_seq_length, P passage pieces.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from bert_keras.checkpoints import config_from_checkpoint
from bert_keras.models import BertEncoder, BertSpanLabeler
from bert_keras.serving.exporter import TASK_INFO_NAMES, find_beside
from bert_keras.serving.serving_module import BertServingModule
from bert_keras.tokenization import BertWordPieceTokenizer

TEXT_INPUT_NAMES = ("question", "context")


class SquadModule(BertServingModule):
    """Args:
    span_labeler: a `BertSpanLabeler`.
    tokenizer: the `BertWordPieceTokenizer` it was fine-tuned with.
    max_seq_length, doc_stride, max_query_length, max_answer_length: as in training.
    version_2_with_negative: a SQuAD 2.0 model (may answer "").
    null_score_diff_threshold: v2's threshold on `null_odds`.
    """

    def __init__(
        self,
        span_labeler,
        tokenizer,
        max_seq_length: int = 384,
        doc_stride: int = 128,
        max_query_length: int = 64,
        max_answer_length: int = 30,
        version_2_with_negative: bool = False,
        null_score_diff_threshold: float = 0.0,
    ):
        encoder = span_labeler.encoder
        super().__init__(
            preprocessor=None,
            num_segments=2,
            max_seq_length=max_seq_length,
            vocab_size=encoder.vocab_size,
            type_vocab_size=encoder.type_vocab_size,
            max_position_embeddings=encoder.max_position_embeddings,
            name="bert_squad",
        )
        if max_seq_length - max_query_length - 3 < 1 or min(doc_stride, max_answer_length) < 1:
            raise ValueError(
                f"max_seq_length={max_seq_length}, max_query_length={max_query_length}, "
                f"doc_stride={doc_stride}, max_answer_length={max_answer_length}: the "
                "window needs room for a passage piece and the strides must be >= 1."
            )
        if max_seq_length > encoder.max_position_embeddings:
            raise ValueError(
                f"max_seq_length={max_seq_length} exceeds the model's "
                f"max_position_embeddings={encoder.max_position_embeddings}."
            )
        self.span_labeler = span_labeler
        self.tokenizer = tokenizer
        self.doc_stride = int(doc_stride)
        self.max_query_length = int(max_query_length)
        self.max_answer_length = int(max_answer_length)
        self.version_2_with_negative = bool(version_2_with_negative)
        self.null_score_diff_threshold = float(null_score_diff_threshold)
        t = self.max_seq_length
        # (T, T): end >= start and at most max_answer_length pieces.
        i, j = np.meshgrid(np.arange(t), np.arange(t), indexing="ij")
        self._span_band = tf.constant((j >= i) & (j - i < self.max_answer_length))
        specs = [tf.TensorSpec([None], tf.string, name=name) for name in TEXT_INPUT_NAMES]
        self.from_text = tf.function(self._answer, input_signature=specs, autograph=False)

    def outputs_from_tokens(self, inputs):
        outputs = self.span_labeler(inputs, training=False)
        return {
            "start_logits": tf.cast(outputs["start_logits"], tf.float32),  # (B, T)
            "end_logits": tf.cast(outputs["end_logits"], tf.float32),  # (B, T)
        }

    # --- Windows ------------------------------------------------------------------------

    def _windows(self, question, context):
        """Tokenized, windowed and packed inputs of every window, and the bookkeeping to map
        positions back to passage pieces."""
        t = self.max_seq_length
        tok = self.tokenizer
        query = tok(question)[:, : self.max_query_length]  # (B, (Q)) int32
        pieces, starts, ends = tok.tokenize_with_offsets(context)  # (B, (P))
        q_len = query.row_lengths()  # (B,) int64
        p_len = pieces.row_lengths()  # (B,)
        max_doc = t - q_len - 3  # (B,) window size in passage pieces, >= 1
        step = tf.minimum(tf.constant(self.doc_stride, tf.int64), max_doc)  # (B,)
        extra = tf.maximum(p_len - max_doc, 0)
        num_windows = 1 + (extra + step - 1) // step  # (B,) ceil division
        example = tf.repeat(tf.range(tf.size(p_len, out_type=tf.int64)), num_windows)  # (W,)
        k = tf.ragged.range(num_windows).flat_values  # (W,) window number in its example
        w_start = k * tf.gather(step, example)  # (W,) first passage piece of the window
        w_len = tf.minimum(tf.gather(p_len, example) - w_start, tf.gather(max_doc, example))
        first_piece = tf.gather(pieces.row_splits[:-1], example) + w_start  # (W,) global
        index = tf.ragged.range(first_piece, first_piece + w_len)  # (W, (L)) global pieces
        doc = tf.gather(pieces.flat_values, index)  # (W, (L))
        query_w = tf.gather(query, example)  # (W, (Q))
        ids, types = tf_text.combine_segments(
            [query_w, doc], start_of_sequence_id=tok.cls_id, end_of_segment_id=tok.sep_id
        )  # (W, (Q + L + 3))
        word_ids, mask = tf_text.pad_model_inputs(ids, t, pad_value=tok.pad_id)  # (W, T)
        type_ids, _ = tf_text.pad_model_inputs(types, t, pad_value=0)
        inputs = {
            "input_word_ids": tf.cast(word_ids, tf.int32),
            "input_mask": tf.cast(mask, tf.int32),
            "input_type_ids": tf.cast(type_ids, tf.int32),
        }
        offset = tf.gather(q_len, example) + 2  # (W,) position of the first passage piece
        return inputs, example, w_len, first_piece, offset, (pieces, starts, ends)

    def _max_context(self, example, w_len, first_piece, local, in_passage, total_pieces):
        """(W, T) bool: position holds a piece this window has the most context for.

        GB's score min(left, right) + 0.01 * window length, times 100 to stay integer;
        ties go to the earlier window."""
        length = w_len[:, None]  # (W, 1)
        score = 100 * tf.minimum(local, length - 1 - local) + length  # (W, T) int64
        piece = tf.where(in_passage, first_piece[:, None] + local, total_pieces)  # (W, T)
        segments = total_pieces + 1  # The last segment collects non-passage positions.
        best = tf.math.unsorted_segment_max(score, piece, segments)  # (P + 1,)
        is_best = in_passage & tf.equal(score, tf.gather(best, piece))
        window = tf.broadcast_to(
            tf.range(tf.size(example, out_type=tf.int64))[:, None], tf.shape(piece)
        )
        first = tf.math.unsorted_segment_min(
            tf.where(is_best, window, tf.int64.max), piece, segments
        )  # (P + 1,)
        return is_best & tf.equal(window, tf.gather(first, piece))

    # --- Answer -------------------------------------------------------------------------

    def _answer(self, question, context):
        check = tf.debugging.assert_equal(
            tf.shape(question),
            tf.shape(context),
            message="question and context differ in batch size",
        )
        with tf.control_dependencies([check]):
            context = tf.identity(context)
        batch = tf.size(context, out_type=tf.int64)
        inputs, example, w_len, first_piece, offset, passage = self._windows(question, context)
        pieces, starts, ends = passage
        total_pieces = tf.size(pieces.flat_values, out_type=tf.int64)
        logits = self.model_outputs(**inputs)
        start_logits, end_logits = logits["start_logits"], logits["end_logits"]  # (W, T)

        t = self.max_seq_length
        local = tf.range(t, dtype=tf.int64)[None, :] - offset[:, None]  # (W, T) piece in window
        in_passage = (local >= 0) & (local < w_len[:, None])  # (W, T)
        max_context = self._max_context(
            example, w_len, first_piece, local, in_passage, total_pieces
        )
        valid = (
            (in_passage & max_context)[:, :, None] & in_passage[:, None, :] & self._span_band[None]
        )  # (W, T, T)
        scores = start_logits[:, :, None] + end_logits[:, None, :]  # (W, T, T)
        scores = tf.reshape(tf.where(valid, scores, -np.inf), [-1, t * t])  # (W, T*T)
        best_flat = tf.argmax(scores, axis=1)  # (W,) first maximum
        best_score = tf.reduce_max(scores, axis=1)  # (W,)

        # Per question, its best window (the first on ties).
        per_question = tf.RaggedTensor.from_value_rowids(best_score, example, nrows=batch)
        dense = per_question.to_tensor(default_value=-np.inf)  # (B, max windows)
        dense = tf.pad(dense, [[0, 0], [0, 1]], constant_values=-np.inf)  # Never 0 wide.
        window = per_question.row_splits[:-1] + tf.argmax(dense, axis=1)  # (B,) global window
        score = tf.reduce_max(dense, axis=1)  # (B,)
        has_span = score > -np.inf  # (B,)
        flat = tf.gather(best_flat, window)
        start_pos, end_pos = flat // t, flat % t  # (B,) positions in the window
        base = tf.gather(first_piece, window) - tf.gather(offset, window)
        # A padded slot stands in for the piece of a question without a span.
        pad = tf.zeros([1], tf.int64)
        start_piece = tf.where(has_span, base + start_pos, total_pieces)
        end_piece = tf.where(has_span, base + end_pos, total_pieces)
        answer_start = tf.gather(tf.concat([starts.flat_values, pad], 0), start_piece)  # (B,)
        answer_end = tf.gather(tf.concat([ends.flat_values, pad], 0), end_piece)

        null = tf.math.unsorted_segment_min(
            start_logits[:, 0] + end_logits[:, 0], example, batch
        )  # (B,) smallest [CLS] score over the question's windows
        null_odds = null - score
        has_answer = has_span
        if self.version_2_with_negative:
            has_answer &= ~(null_odds > self.null_score_diff_threshold)
        answer = tf.where(
            has_answer,
            tf.strings.substr(context, answer_start, answer_end - answer_start, unit="BYTE"),
            "",
        )
        return {
            "answer": answer,
            "score": score,
            "answer_start": answer_start,
            "answer_end": answer_end,
            "null_odds": null_odds,
            "has_answer": has_answer,
        }


def build_squad_module(checkpoint: str, options) -> SquadModule:
    """A `SquadModule` from a SQuAD fine-tuning run's checkpoint (`output_dir/final`).

    `options` is a resolved `exporter.ExportOptions` (vocab, lower-casing and
    max_seq_length settled); doc_stride, max_query_length, max_answer_length and the v2
    settings come from the run's task_info.json beside the checkpoint.
    """
    info_path = options.task_info or find_beside(checkpoint, TASK_INFO_NAMES)
    if info_path is None:
        raise ValueError(
            f"--kind=squad: no task_info.json beside --checkpoint={checkpoint}; export the "
            "final/ folder of a `bert_keras.finetune --task=squad_v1|squad_v2` run."
        )
    with tf.io.gfile.GFile(info_path) as f:
        info = json.load(f)
    if info.get("model_class") != "BertSpanLabeler":
        raise ValueError(
            f"{info_path}: holds a {info.get('model_class')}, not a SQuAD BertSpanLabeler."
        )
    config = config_from_checkpoint(checkpoint)
    span_labeler = BertSpanLabeler(BertEncoder(**dataclasses.asdict(config)))
    prefix = tf.train.latest_checkpoint(checkpoint) if tf.io.gfile.isdir(checkpoint) else checkpoint
    if prefix is None or not tf.io.gfile.exists(prefix + ".index"):
        raise ValueError(f"--checkpoint={checkpoint}: no checkpoint found there.")
    status = tf.train.Checkpoint(model=span_labeler).read(prefix)
    status.assert_existing_objects_matched()
    status.expect_partial()
    tokenizer = BertWordPieceTokenizer(options.vocab_file, lower_case=options.do_lower_case)
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(
            f"--vocab_file has {tokenizer.vocab_size} tokens but the model of "
            f"--checkpoint={checkpoint} has vocab_size={config.vocab_size}."
        )
    return SquadModule(
        span_labeler,
        tokenizer,
        max_seq_length=options.max_seq_length,
        doc_stride=info["doc_stride"],
        max_query_length=info["max_query_length"],
        max_answer_length=info["max_answer_length"],
        version_2_with_negative=info["version_2_with_negative"],
        null_score_diff_threshold=info["null_score_diff_threshold"],
    )

"""SQuAD examples -> model inputs, as google-research/bert's (GB) `run_squad.py` builds them.

Each window is `[CLS] question [SEP] passage window [SEP]`, padded to `max_seq_length`
(T): type ids 0 for `[CLS] question [SEP]`, 1 for the passage and its `[SEP]`.

- The question is cut to `max_query_length` pieces (counted: `questions_truncated`).
- The passage's pieces are covered by windows of `T - len(question) - 3` pieces, each
  starting `doc_stride` pieces after the previous one (or one window length, if shorter),
  the last one ending at the passage's end; GB's loop exactly. An empty passage gets one
  window with no passage pieces, so its question still gets a (null) prediction.
- Alignment: every passage piece carries its `[start, end)` character span in the ORIGINAL
  passage (from `BertWordPieceTokenizer.tokenize_with_offsets`, byte offsets converted to
  characters), so WordPiece splits, punctuation glued to words and any whitespace map
  back exactly. Where the tokenizer's normalisation changes a word's length (accents
  under lower-casing) every piece of the word spans the whole word (a whitespace- and
  punctuation-delimited word), which is GB's word-level alignment.
- Training targets: the answer's pieces are those whose span overlaps the answer's
  characters (so an answer that cuts into a word selects that word's pieces, and GB's
  `_improve_answer_span` is not needed). In a window holding all of them, start/end are
  their positions; in any other window, and for unanswerable (v2) questions, both are 0
  (`[CLS]`). An answerable example without a usable answer is skipped and counted.
- `is_max_context` (GB's `_check_is_max_context`): a piece seen by several windows
  belongs to the one where min(left context, right context) + 0.01 * window length is
  largest (the first one on ties); answers may only START at such positions.

Dimension legend: N windows, T max_seq_length, P passage pieces, Q question pieces.
"""

from __future__ import annotations

import collections
import dataclasses
import weakref
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from bert_keras.squad.reader import SquadExample

NO_SPAN = -1  # char_starts/char_ends of positions outside the passage.


@dataclasses.dataclass
class TokenizedPassage:
    ids: np.ndarray  # (P,) int32
    char_starts: np.ndarray  # (P,) int32, into the passage string
    char_ends: np.ndarray  # (P,) int32, exclusive


@dataclasses.dataclass
class SquadFeatures:
    """All windows of a list of examples, as arrays."""

    input_word_ids: np.ndarray  # (N, T) int32
    input_mask: np.ndarray  # (N, T) int32
    input_type_ids: np.ndarray  # (N, T) int32
    start_positions: np.ndarray  # (N,) int32, 0 = [CLS] (not in this window / no answer)
    end_positions: np.ndarray  # (N,) int32
    example_index: np.ndarray  # (N,) int32, index into the examples list
    char_starts: np.ndarray  # (N, T) int32, NO_SPAN outside the passage
    char_ends: np.ndarray  # (N, T) int32
    is_max_context: np.ndarray  # (N, T) bool

    def __len__(self) -> int:
        return len(self.example_index)

    def model_inputs(self) -> dict[str, np.ndarray]:
        return {
            "input_word_ids": self.input_word_ids,
            "input_mask": self.input_mask,
            "input_type_ids": self.input_type_ids,
        }

    def labels(self) -> dict[str, np.ndarray]:
        return {"start_logits": self.start_positions, "end_logits": self.end_positions}


@dataclasses.dataclass
class FeatureStats:
    examples: int = 0
    windows: int = 0
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def summary(self) -> str:
        text = f"{self.examples} examples -> {self.windows} windows"
        if self.counts:
            text += "; " + ", ".join(f"{n} {k}" for k, n in sorted(self.counts.items()))
        return text


def check_lengths(max_seq_length: int, max_query_length: int, doc_stride: int) -> None:
    if max_query_length < 1 or doc_stride < 1:
        raise ValueError(
            f"--max_query_length={max_query_length} and --doc_stride={doc_stride} must be >= 1."
        )
    if max_seq_length - max_query_length - 3 < 1:
        raise ValueError(
            f"--max_seq_length={max_seq_length} leaves no room for the passage after "
            f"--max_query_length={max_query_length} and 3 special tokens; lower "
            "--max_query_length or raise --max_seq_length."
        )


def doc_windows(num_pieces: int, max_tokens_for_doc: int, doc_stride: int):
    """GB's DocSpans: [(start, length)] covering `num_pieces` pieces; [(0, 0)] if none."""
    if num_pieces == 0:
        return [(0, 0)]
    windows, start = [], 0
    while True:
        length = min(num_pieces - start, max_tokens_for_doc)
        windows.append((start, length))
        if start + length == num_pieces:
            return windows
        start += min(length, doc_stride)


def max_context_owner(windows, num_pieces: int) -> np.ndarray:
    """(P,) int: the window each passage piece has the most context in (GB's rule)."""
    best = np.full([num_pieces], -np.inf)
    owner = np.zeros([num_pieces], np.int64)
    for w, (start, length) in enumerate(windows):
        local = np.arange(length)
        score = np.minimum(local, length - 1 - local) + 0.01 * length
        better = score > best[start : start + length]  # Strict: the first window keeps ties.
        best[start : start + length] = np.where(better, score, best[start : start + length])
        owner[start : start + length][better] = w
    return owner


def _byte_to_char(text: str) -> np.ndarray:
    """(bytes + 1,) the character index at every UTF-8 byte offset of `text`."""
    lengths = [len(c.encode("utf-8", "surrogatepass")) for c in text]
    return np.concatenate([np.repeat(np.arange(len(text)), lengths), [len(text)]]).astype(np.int64)


_OFFSET_FNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _offsets_fn(tokenizer):
    """The tokenizer's offsets, traced once per tokenizer."""
    if tokenizer not in _OFFSET_FNS:

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def tokenize(strings):
            ids, starts, ends = tokenizer.tokenize_with_offsets(strings)  # (B, (P)) each
            return ids.flat_values, ids.row_splits, starts.flat_values, ends.flat_values

        _OFFSET_FNS[tokenizer] = tokenize
    return _OFFSET_FNS[tokenizer]


def tokenize_passages(tokenizer, passages: Sequence[str], batch_size: int = 256):
    """Passages -> list[TokenizedPassage], in batches of one graph call each."""
    tokenize = _offsets_fn(tokenizer)
    out = []
    for first in range(0, len(passages), batch_size):
        chunk = list(passages[first : first + batch_size])
        encoded = [p.encode("utf-8", "surrogatepass") for p in chunk]
        ids, splits, starts, ends = (t.numpy() for t in tokenize(tf.constant(encoded)))
        for i, text in enumerate(chunk):
            lo, hi = splits[i], splits[i + 1]
            to_char = _byte_to_char(text)
            s = np.clip(starts[lo:hi], 0, len(to_char) - 1)
            e = np.clip(ends[lo:hi], 1, len(to_char) - 1)
            char_starts = to_char[s]
            char_ends = np.maximum(to_char[e - 1] + 1, char_starts + 1)
            out.append(
                TokenizedPassage(
                    ids[lo:hi].astype(np.int32),
                    char_starts.astype(np.int32),
                    np.minimum(char_ends, len(text)).astype(np.int32),
                )
            )
    return out


def answer_pieces(passage: TokenizedPassage, char_start: int, char_end: int):
    """(first, last) passage piece overlapping characters [char_start, char_end), or None."""
    overlap = np.nonzero((passage.char_ends > char_start) & (passage.char_starts < char_end))[0]
    if overlap.size == 0:
        return None
    return int(overlap[0]), int(overlap[-1])


def convert_examples_to_features(
    examples: Sequence[SquadExample],
    tokenizer,
    max_seq_length: int,
    doc_stride: int,
    max_query_length: int,
    is_training: bool,
) -> tuple[SquadFeatures, FeatureStats]:
    """Examples -> (SquadFeatures of all their windows, FeatureStats).

    Training drops answerable examples without a usable answer (counted as
    `no_answer_position`: none of the gold answers was found in the passage, or
    `answer_without_pieces`: the answer is only characters the tokenizer drops) and counts
    windows whose answer lies elsewhere (`windows_without_answer`, labelled [CLS]).
    """
    check_lengths(max_seq_length, max_query_length, doc_stride)
    stats = FeatureStats()
    # Each passage once, in first-seen order.
    passage_of: dict[int, int] = {}
    passage_texts: list[str] = []
    for example in examples:
        if example.context_index not in passage_of:
            passage_of[example.context_index] = len(passage_texts)
            passage_texts.append(example.context)
    passages = tokenize_passages(tokenizer, passage_texts)
    questions = []
    for first in range(0, len(examples), 1024):
        questions.extend(
            tokenizer.encode_batch([e.question for e in examples[first : first + 1024]])
        )
    cls_id, sep_id, pad_id = tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id

    rows: dict[str, list] = collections.defaultdict(list)
    t = max_seq_length
    for index, example in enumerate(examples):
        passage = passages[passage_of[example.context_index]]
        query = questions[index]
        if len(query) > max_query_length:
            stats.counts["questions_truncated"] += 1
            query = query[:max_query_length]
        num_pieces = len(passage.ids)
        if num_pieces == 0:
            stats.counts["empty_passages"] += 1
        target = None
        if is_training and not example.is_impossible:
            answer = example.target
            if answer is None:
                stats.counts["no_answer_position"] += 1
                continue
            target = answer_pieces(passage, answer.char_start, answer.char_end)
            if target is None:
                stats.counts["answer_without_pieces"] += 1
                continue
        stats.examples += 1
        windows = doc_windows(num_pieces, t - len(query) - 3, doc_stride)
        owner = max_context_owner(windows, num_pieces)
        offset = len(query) + 2  # Position of the window's first passage piece.
        for w, (start, length) in enumerate(windows):
            ids = np.full([t], pad_id, np.int32)
            types = np.zeros([t], np.int32)
            char_starts = np.full([t], NO_SPAN, np.int32)
            char_ends = np.full([t], NO_SPAN, np.int32)
            max_context = np.zeros([t], bool)
            ids[0], ids[1 : offset - 1], ids[offset - 1] = cls_id, query, sep_id
            end = offset + length
            ids[offset:end] = passage.ids[start : start + length]
            ids[end] = sep_id
            types[offset : end + 1] = 1
            char_starts[offset:end] = passage.char_starts[start : start + length]
            char_ends[offset:end] = passage.char_ends[start : start + length]
            max_context[offset:end] = owner[start : start + length] == w
            start_position = end_position = 0
            if target is not None:
                if start <= target[0] and target[1] < start + length:
                    start_position = target[0] - start + offset
                    end_position = target[1] - start + offset
                else:
                    stats.counts["windows_without_answer"] += 1
            mask = np.zeros([t], np.int32)
            mask[: end + 1] = 1
            for name, value in (
                ("input_word_ids", ids),
                ("input_mask", mask),
                ("input_type_ids", types),
                ("start_positions", start_position),
                ("end_positions", end_position),
                ("example_index", index),
                ("char_starts", char_starts),
                ("char_ends", char_ends),
                ("is_max_context", max_context),
            ):
                rows[name].append(value)
            stats.windows += 1
    features = SquadFeatures(
        **{
            field.name: _stack(rows[field.name], field.name, t)
            for field in dataclasses.fields(SquadFeatures)
        }
    )
    return features, stats


def _stack(values: list, name: str, t: int) -> np.ndarray:
    if name == "is_max_context":
        return np.stack(values) if values else np.zeros([0, t], bool)
    if name in ("start_positions", "end_positions", "example_index"):
        return np.asarray(values, np.int32).reshape([-1])
    return np.stack(values).astype(np.int32) if values else np.zeros([0, t], np.int32)

"""Pairing: sentence-pair instances from tokenized documents, google-research/bert's (GB) rules.

Per document and per dupe pass (each with its own `rng`):
- target length `max_seq_length - 3`; with probability `short_seq_prob` a random
  `randint(2, max_num_tokens)` instead;
- sentences are collected into a chunk until it reaches the target or the document ends;
  A = the first `randint(1, len(chunk) - 1)` sentences (1 for a one-sentence chunk);
- B is a span of ANOTHER document (label 1) when the chunk has one sentence, else with
  probability 0.5; it starts at a random sentence and fills up to `target - len(A)`, and
  the chunk's unused sentences are put back. Otherwise B is the rest of the chunk (label 0);
- `truncate_seq_pair` trims the longer segment (B on ties) one token at a time from the
  front or the back, 50/50.

Where GB differs: GB retries 10 times to avoid drawing the same document and then gives
up; here the random document is drawn from the OTHER documents only. With no other document
(a bucket, or corpus, of one document) no random pair can be made: a chunk with several
sentences then gets its true continuation, a one-sentence chunk is skipped, and both are
counted (`random_next_unavailable`, `chunks_skipped_no_random_document`).

A document is a flat id array with sentence offsets (`TokenizedDocument`), so A, B and the
truncation are index ranges: nothing is copied until an instance is assembled.

Dimension legend: L instance length (<= max_seq_length).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple, TypeVar

import numpy as np

from pipeline.documents import TokenizedDocument

S = TypeVar("S", bound=Sequence)


class PairInstance(NamedTuple):
    """`[CLS] A [SEP] B [SEP]` before masking."""

    input_ids: np.ndarray  # (L,) int32
    num_a: int  # Tokens in A: segment ids are 0 for positions [0, num_a + 2), then 1.
    word_starts: np.ndarray | None  # (L,) bool, True at the first piece of a word.
    is_random_next: bool

    @property
    def segment_ids(self) -> np.ndarray:
        ids = np.ones(len(self.input_ids), np.int32)  # (L,)
        ids[: self.num_a + 2] = 0
        return ids


@dataclasses.dataclass
class PairingStats:
    instances: int = 0
    random_next: int = 0
    random_next_unavailable: int = 0
    chunks_skipped_no_random_document: int = 0


def truncation_bounds(
    len_a: int, len_b: int, max_num_tokens: int, rng: random.Random
) -> tuple[tuple[int, int], tuple[int, int]]:
    """GB's `truncate_seq_pair` as index ranges: ((a_begin, a_end), (b_begin, b_end)).

    Same random draws as GB (one `rng.random()` per removed token), but O(1) per token:
    GB's `del tokens[0]` makes a single 1 MB line quadratic.
    """
    a_lo, a_hi, b_lo, b_hi = 0, len_a, 0, len_b
    while (a_hi - a_lo) + (b_hi - b_lo) > max_num_tokens:
        from_front = rng.random() < 0.5
        if (a_hi - a_lo) > (b_hi - b_lo):
            if from_front:
                a_lo += 1
            else:
                a_hi -= 1
        elif from_front:
            b_lo += 1
        else:
            b_hi -= 1
    return (a_lo, a_hi), (b_lo, b_hi)


def truncate_seq_pair(
    tokens_a: S, tokens_b: S, max_num_tokens: int, rng: random.Random
) -> tuple[S, S]:
    """Returns (A, B) truncated to at most `max_num_tokens` together (slices, inputs kept)."""
    (a_lo, a_hi), (b_lo, b_hi) = truncation_bounds(
        len(tokens_a), len(tokens_b), max_num_tokens, rng
    )
    return tokens_a[a_lo:a_hi], tokens_b[b_lo:b_hi]  # type: ignore[return-value]


def assemble(
    tokens_a: np.ndarray,
    tokens_b: np.ndarray,
    cls_id: int,
    sep_id: int,
    word_starts_a: np.ndarray | None = None,
    word_starts_b: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """`[CLS] A [SEP] B [SEP]` -> (input_ids (L,) int32, word_starts (L,) bool or None)."""
    input_ids = np.concatenate([[cls_id], tokens_a, [sep_id], tokens_b, [sep_id]]).astype(
        np.int32
    )  # (L,)
    word_starts = None
    if word_starts_a is not None and word_starts_b is not None:
        word_starts = np.concatenate([[True], word_starts_a, [True], word_starts_b, [True]])
        word_starts = word_starts.astype(bool)
    return input_ids, word_starts


class PairSpans(NamedTuple):
    """A pair before assembly: A and B are views into their documents' token arrays."""

    tokens_a: np.ndarray  # (A,) int32
    tokens_b: np.ndarray  # (B,) int32
    word_starts_a: np.ndarray | None  # (A,) bool
    word_starts_b: np.ndarray | None  # (B,) bool
    is_random_next: bool

    def assemble(self, cls_id: int, sep_id: int) -> tuple[np.ndarray, np.ndarray | None]:
        """`[CLS] A [SEP] B [SEP]`: (input_ids (L,) int32, word_starts (L,) bool or None)."""
        return assemble(
            self.tokens_a,
            self.tokens_b,
            cls_id,
            sep_id,
            self.word_starts_a,
            self.word_starts_b,
        )


def sentence_offsets_of(document: TokenizedDocument) -> list[int]:
    """`document.sentence_starts` as Python ints (the pairing loop reads them one at a time)."""
    return document.sentence_starts.tolist()


def random_below(getrandbits: Callable[[int], int], n: int) -> int:
    """`rng.randrange(n)` (n >= 1) with the same draws (CPython's `_randbelow`), without
    `randrange`'s argument checks and call layers: the pairing loop draws ~2 such numbers
    per pair; with the sentence offsets read as Python ints, pairing went from ~8.3 to
    ~5.5 us a pair on the default corpus. `tests/pipeline/test_instances.py` holds it to
    `random.Random.randrange`."""
    if n <= 0:
        raise ValueError(f"Empty range for random_below: {n}.")
    bits = n.bit_length()
    value = getrandbits(bits)
    while value >= n:
        value = getrandbits(bits)
    return value


def create_instances_from_document(
    documents: Sequence[TokenizedDocument],
    document_index: int,
    max_seq_length: int,
    short_seq_prob: float,
    cls_id: int,
    sep_id: int,
    rng: random.Random,
    stats: PairingStats | None = None,
) -> Iterator[PairInstance]:
    """The instances of `documents[document_index]`; random B from the other documents."""
    for pair in pair_spans_from_document(
        documents, document_index, max_seq_length, short_seq_prob, rng, stats
    ):
        input_ids, word_starts = pair.assemble(cls_id, sep_id)
        yield PairInstance(input_ids, len(pair.tokens_a), word_starts, pair.is_random_next)


def pair_spans_from_document(
    documents: Sequence[TokenizedDocument],
    document_index: int,
    max_seq_length: int,
    short_seq_prob: float,
    rng: random.Random,
    stats: PairingStats | None = None,
    sentence_offsets: Sequence[list[int]] | None = None,
) -> Iterator[PairSpans]:
    """The pairs of `documents[document_index]`, truncated, not yet assembled.

    `sentence_offsets[i]` (optional, `sentence_offsets_of(documents[i])`): passed by
    callers that pair every document of a bucket several times, so it is computed once.
    """
    stats = stats if stats is not None else PairingStats()
    if sentence_offsets is None:
        sentence_offsets = [sentence_offsets_of(d) for d in documents]
    document = documents[document_index]
    starts = sentence_offsets[document_index]  # (S + 1,)
    num_sentences = len(starts) - 1
    max_num_tokens = max_seq_length - 3
    target_seq_length = max_num_tokens
    random, getrandbits = rng.random, rng.getrandbits
    if random() < short_seq_prob:
        target_seq_length = 2 + random_below(getrandbits, max_num_tokens - 1)  # randint(2, max)

    chunk_start = 0  # First sentence of the current chunk.
    current_length = 0
    i = 0
    while i < num_sentences:
        current_length += starts[i + 1] - starts[i]
        if i == num_sentences - 1 or current_length >= target_seq_length:
            chunk_size = i + 1 - chunk_start
            # randint(1, chunk_size - 1)
            a_end = 1 if chunk_size < 2 else 1 + random_below(getrandbits, chunk_size - 1)
            a_source, a_lo, a_hi = document, starts[chunk_start], starts[chunk_start + a_end]
            wants_random = chunk_size == 1 or random() < 0.5
            if wants_random and len(documents) < 2:
                stats.random_next_unavailable += 1
                if chunk_size == 1:
                    stats.chunks_skipped_no_random_document += 1
                    chunk_start, current_length = i + 1, 0
                    i += 1
                    continue
                wants_random = False
            if wants_random:
                target_b_length = target_seq_length - (a_hi - a_lo)
                other = random_below(getrandbits, len(documents) - 1)
                other += other >= document_index  # Never the same document.
                b_source = documents[other]
                other_starts = sentence_offsets[other]
                other_sentences = len(other_starts) - 1
                random_start = random_below(getrandbits, other_sentences)
                # At least one sentence (GB's loop adds before it checks the length), then
                # whole sentences until B reaches its target.
                random_end = random_start + 1
                while (
                    random_end < other_sentences
                    and other_starts[random_end] - other_starts[random_start] < target_b_length
                ):
                    random_end += 1
                b_lo, b_hi = other_starts[random_start], other_starts[random_end]
                i -= chunk_size - a_end  # Put the unused sentences back.
            else:
                b_source, b_lo, b_hi = document, a_hi, starts[i + 1]
            (a_first, a_last), (b_first, b_last) = truncation_bounds(
                a_hi - a_lo, b_hi - b_lo, max_num_tokens, rng
            )
            a_lo, a_hi = a_lo + a_first, a_lo + a_last
            b_lo, b_hi = b_lo + b_first, b_lo + b_last
            stats.instances += 1
            stats.random_next += wants_random
            yield PairSpans(
                a_source.token_ids[a_lo:a_hi],
                b_source.token_ids[b_lo:b_hi],
                a_source.word_starts[a_lo:a_hi] if a_source.word_starts is not None else None,
                b_source.word_starts[b_lo:b_hi] if b_source.word_starts is not None else None,
                wants_random,
            )
            chunk_start, current_length = i + 1, 0
        i += 1

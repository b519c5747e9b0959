"""RoBERTa input formats: sentences packed into `[CLS] tokens [SEP]` blocks, no NSP.

Liu et al. 2019 (RoBERTa), section 4.2 and Table 2, compare:
- FULL-SENTENCES: contiguous sentences, possibly from several documents, up to the
  maximum length; "when we reach the end of one document, we begin sampling sentences from
  the next document and add an extra separator token between documents";
- DOC-SENTENCES: the same, but a block never crosses a document boundary (blocks at a
  document's end are shorter).
DOC-SENTENCES did slightly better in the paper, FULL-SENTENCES wastes no padding; both
are offered (`--packing`).

Rules here (`max_num_tokens = max_seq_length - 2`, room for [CLS] and the final [SEP]):
- whole sentences are added while they fit; a sentence that does not fit closes the block;
- a sentence longer than `max_num_tokens` on its own is cut into pieces of
  `max_num_tokens` (nothing is dropped) and counted (`sentences_split`);
- crossing documents, a separator [SEP] goes between the last sentence of one document and
  the first of the next when both are in the same block (never at a block's edge);
- `short_seq_prob` is not used: RoBERTa trains on full-length blocks only.

Determinism: packing draws nothing at random. Crossing documents, the documents of a bucket
are taken in a seeded order (`stable_rng(seed, "packing_order", <first doc id>, pass)`
shuffles the id-sorted list), so each dupe pass packs them differently and the order never
depends on arrival.

Dimension legend: L block length (<= max_seq_length), K inner separators.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np

from pipeline.documents import TokenizedDocument


class PackedInstance(NamedTuple):
    """`[CLS] tokens [SEP]` before masking."""

    input_ids: np.ndarray  # (L,) int32
    word_starts: np.ndarray | None  # (L,) bool, True at the first piece of a word.
    separators: np.ndarray  # (K,) int64, positions of the [SEP]s between documents.
    num_documents: int  # Documents whose tokens are in the block.

    def candidates(self) -> np.ndarray:
        """Positions that may be masked: all but [CLS], the final [SEP] and the separators."""
        keep = np.ones(len(self.input_ids), bool)
        keep[[0, len(self.input_ids) - 1]] = False
        keep[self.separators] = False
        return np.flatnonzero(keep)  # (L - 2 - K,) int64


@dataclasses.dataclass
class PackingStats:
    instances: int = 0
    instances_crossing_documents: int = 0
    sentences_split: int = 0


class _Block:
    """The pieces of the block being filled (views into the documents' arrays)."""

    def __init__(self) -> None:
        self.ids: list[np.ndarray] = []
        self.starts: list[np.ndarray | None] = []
        self.separators: list[int] = []  # Offsets inside the block's tokens.
        self.length = 0
        self.doc_ids: set[str] = set()

    def add(self, ids: np.ndarray, starts: np.ndarray | None, doc_id: str) -> None:
        self.ids.append(ids)
        self.starts.append(starts)
        self.length += len(ids)
        self.doc_ids.add(doc_id)

    def add_separator(self, sep_id: int, with_words: bool) -> None:
        self.separators.append(self.length)
        self.add(np.array([sep_id], np.int32), np.ones(1, bool) if with_words else None, "")
        self.doc_ids.discard("")


def _finish(block: _Block, cls_id: int, sep_id: int, stats: PackingStats) -> PackedInstance:
    input_ids = np.concatenate([[cls_id], *block.ids, [sep_id]]).astype(np.int32)  # (L,)
    word_starts = None
    if block.starts and all(s is not None for s in block.starts):
        word_starts = np.concatenate([[True], *block.starts, [True]]).astype(bool)  # (L,)
    separators = np.asarray(block.separators, np.int64) + 1  # (K,), after [CLS]
    stats.instances += 1
    stats.instances_crossing_documents += len(block.doc_ids) > 1
    return PackedInstance(input_ids, word_starts, separators, len(block.doc_ids))


def pack_sentences(
    documents: Iterable[TokenizedDocument],
    max_seq_length: int,
    cls_id: int,
    sep_id: int,
    cross_documents: bool,
    stats: PackingStats | None = None,
) -> Iterator[PackedInstance]:
    """Blocks of contiguous sentences of `documents`, in the order given.

    cross_documents=True is FULL-SENTENCES, False DOC-SENTENCES (a block ends with its
    document).
    """
    stats = stats if stats is not None else PackingStats()
    max_num_tokens = max_seq_length - 2
    block = _Block()
    for document in documents:
        with_words = document.word_starts is not None
        if not cross_documents and block.length:
            yield _finish(block, cls_id, sep_id, stats)
            block = _Block()
        # A separator is owed when the block holds another document's tokens.
        owes_separator = block.length > 0
        for s in range(document.num_sentences):
            lo, hi = int(document.sentence_starts[s]), int(document.sentence_starts[s + 1])
            if hi - lo > max_num_tokens:
                stats.sentences_split += 1
            while lo < hi:
                need = min(hi - lo, max_num_tokens)
                extra = 1 if owes_separator and block.length else 0
                if block.length and block.length + extra + need > max_num_tokens:
                    yield _finish(block, cls_id, sep_id, stats)
                    block, extra = _Block(), 0
                if extra:
                    block.add_separator(sep_id, with_words)
                owes_separator = False
                # Fill what is left of the block (a long sentence is cut here).
                take = min(hi - lo, max_num_tokens - block.length)
                word_starts = document.word_starts
                starts = word_starts[lo : lo + take] if word_starts is not None else None
                block.add(document.token_ids[lo : lo + take], starts, document.doc_id)
                lo += take
                if lo < hi:  # The block is full and the sentence goes on.
                    yield _finish(block, cls_id, sep_id, stats)
                    block = _Block()
    if block.length:
        yield _finish(block, cls_id, sep_id, stats)

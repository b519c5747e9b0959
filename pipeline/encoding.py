"""Instances -> records, a batch at a time: padded arrays, masked and serialized in NumPy.

Pairing and packing are sequential per document (each draw depends on the last), but what
follows is the same for every instance: pad, mask (`pipeline.masking.mask_batch`), lay out
google-research/bert's features and serialize (`bert_keras.example_wire`). Done per
instance, NumPy's and protobuf's per-call overhead cost ~75 us an instance, more than
anything else in the job; done per batch it is paid once (`benchmarks/pipeline_throughput.py`).

The records are byte-identical to masking each instance with
`create_masked_lm_predictions` and serializing it with `records.serialize_example`: the
masking draws are taken from the document's rng at the same point of the sequence
(`masking_draws`, right after the instance is paired), only used later.

Dimension legend: N instances of a batch, S max_seq_length, P max_predictions_per_seq.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

import numpy as np

from bert_keras import records
from bert_keras.example_wire import serialize_examples
from pipeline.masking import MaskedLm, MaskedLmBatch, draws_batch, mask_batch

BATCH_SIZE = 1024  # Instances encoded together: the per-batch overhead is ~1 ms.


class PendingInstance(NamedTuple):
    """An instance paired (or packed), not yet masked nor serialized: either a pair,
    `[CLS] A [SEP] B [SEP]` assembled in the batch, or a finished one-segment sequence."""

    pair: tuple[np.ndarray, np.ndarray] | None  # (A (a,), B (b,)) int32: the pair layout.
    input_ids: np.ndarray | None  # (L,) int32 unmasked, [CLS] and [SEP]s in: one segment.
    next_sentence_label: int | None  # 1 = random next; None when there is no NSP.
    candidates: np.ndarray | None  # (C,) positions that may be masked; None: the pair's.
    draws: bytes | None  # `masking_draws` of the instance (default masking).
    masked: MaskedLm | None  # Already masked (whole-word or n-gram masking).


@dataclasses.dataclass
class BinStats:
    """What a record length (a length bin) counts."""

    instances: int = 0
    random_next: int = 0
    tokens: int = 0
    masked_tokens: int = 0


@dataclasses.dataclass
class EncodedCounts:
    """What encoding counts, overall and per record length."""

    tokens: int = 0
    masked_tokens: int = 0
    per_length: dict[int, BinStats] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class EncodingConfig:
    max_seq_length: int  # The longest record; every instance fits it.
    cls_id: int
    sep_id: int
    max_predictions_per_seq: int
    masked_lm_prob: float
    vocab_size: int
    mask_id: int
    has_masked_lm: bool
    has_next_sentence: bool
    bins: tuple[int, ...] = ()  # Record lengths, ascending, the last max_seq_length.

    def record_lengths(self) -> tuple[int, ...]:
        return self.bins or (self.max_seq_length,)


def encode_instances(
    instances: Iterable[PendingInstance],
    config: EncodingConfig,
    counts: EncodedCounts,
    batch_size: int = BATCH_SIZE,
) -> Iterator[tuple[int, bytes]]:
    """(record length, serialized example) per instance, in the order of `instances`."""
    iterator = iter(instances)
    while batch := list(itertools.islice(iterator, batch_size)):
        yield from encode_batch(batch, config, counts)


class _Layout(NamedTuple):
    """Where each part of a batch's sequences lies. Each (N, S) bool."""

    real: np.ndarray  # every token (not padding)
    in_a: np.ndarray  # a pair's A
    in_b: np.ndarray  # a pair's B
    in_sequence: np.ndarray  # a one-segment sequence, [CLS] and [SEP]s included


def _layout(is_pair: np.ndarray, num_a: np.ndarray, lengths: np.ndarray, width: int) -> _Layout:
    column = np.arange(width)  # (S,)
    real = column < lengths[:, None]
    pair = is_pair[:, None]
    in_a = pair & (column >= 1) & (column <= num_a[:, None])
    in_b = pair & (column >= num_a[:, None] + 2) & (column < lengths[:, None] - 1)
    return _Layout(real, in_a, in_b, real & ~pair)


def _assemble(
    batch: Sequence[PendingInstance],
    layout: _Layout,
    num_a: np.ndarray,
    lengths: np.ndarray,
    config: EncodingConfig,
) -> np.ndarray:
    """The unmasked ids (N, S) int32, 0-padded: pairs laid out, sequences copied."""
    input_ids = np.zeros(layout.real.shape, np.int32)
    # The row-major order of a mask's cells is the instances' order: one scatter per part.
    pairs = [instance.pair for instance in batch if instance.pair is not None]
    if pairs:
        input_ids[layout.in_a] = np.concatenate([a for a, _ in pairs])
        input_ids[layout.in_b] = np.concatenate([b for _, b in pairs])
        rows = np.array([i for i, instance in enumerate(batch) if instance.pair is not None])
        input_ids[rows, 0] = config.cls_id
        input_ids[rows, num_a[rows] + 1] = config.sep_id
        input_ids[rows, lengths[rows] - 1] = config.sep_id
    sequences = [instance.input_ids for instance in batch if instance.input_ids is not None]
    if sequences:
        input_ids[layout.in_sequence] = np.concatenate(sequences)
    return input_ids


def _scatter_rows(shape: tuple[int, int], rows: Sequence[np.ndarray], dtype) -> np.ndarray:
    """Row i of the result starts with `rows[i]`, zeros after it."""
    out = np.zeros(shape, dtype)
    lengths = np.array([len(row) for row in rows])
    if lengths.sum():
        out[np.arange(shape[1]) < lengths[:, None]] = np.concatenate(rows)
    return out


def _length(instance: PendingInstance) -> int:
    if instance.pair is not None and instance.input_ids is None:
        return len(instance.pair[0]) + len(instance.pair[1]) + 3
    if instance.pair is None and instance.input_ids is not None:
        return len(instance.input_ids)
    raise ValueError("An instance is either a pair or a one-segment sequence.")


def encode_batch(
    batch: Sequence[PendingInstance], config: EncodingConfig, counts: EncodedCounts
) -> list[tuple[int, bytes]]:
    """Masks, pads and serializes `batch`; returns (record length, record) in its order."""
    num_rows, width = len(batch), config.max_seq_length
    is_pair = np.array([instance.pair is not None for instance in batch])  # (N,)
    num_a = np.array([len(i.pair[0]) if i.pair is not None else 0 for i in batch])  # (N,)
    lengths = np.array([_length(instance) for instance in batch])  # (N,)
    if lengths.max() > width:
        raise ValueError(f"Instance of {lengths.max()} tokens is longer than {width}.")
    layout = _layout(is_pair, num_a, lengths, width)
    input_ids = _assemble(batch, layout, num_a, lengths, config)
    # Segment 1 is B and the [SEP] after it.
    segment_ids = layout.in_b.copy()
    segment_ids[np.flatnonzero(is_pair), lengths[is_pair] - 1] = True
    features: dict[str, np.ndarray] = {
        records.INPUT_MASK: layout.real.astype(np.int32),
        records.SEGMENT_IDS: segment_ids.astype(np.int32),
    }
    masked_counts = np.zeros(num_rows, np.int64)
    if config.has_masked_lm:
        masked = _mask(batch, input_ids, lengths, layout.in_a | layout.in_b, config)
        masked_counts = masked.counts
        features[records.INPUT_IDS] = masked.output_ids
        features[records.MASKED_LM_POSITIONS] = masked.positions
        features[records.MASKED_LM_IDS] = masked.label_ids
        slot = np.arange(config.max_predictions_per_seq)
        features[records.MASKED_LM_WEIGHTS] = (slot < masked.counts[:, None]).astype(np.float32)
    else:
        features[records.INPUT_IDS] = input_ids
    random_next = np.zeros(num_rows, np.int64)
    if config.has_next_sentence:
        labels = [instance.next_sentence_label for instance in batch]
        if any(label is None for label in labels):
            raise ValueError("Records with next-sentence labels need a label per instance.")
        random_next = np.array(labels, np.int64)
        features[records.NEXT_SENTENCE_LABELS] = random_next[:, None]

    bounds = np.array(config.record_lengths())
    bin_index = np.searchsorted(bounds, lengths, side="left")  # (N,) smallest bound >= length
    serialized: list[bytes] = [b""] * num_rows
    sequence_names = set(records.SEQUENCE_FEATURES)
    for index in np.unique(bin_index):
        bound = int(bounds[index])
        rows = np.flatnonzero(bin_index == index)
        if len(rows) == num_rows and bound == width:  # One bin holds all: no copies.
            records_of_bin = serialize_examples(features)
        else:
            records_of_bin = serialize_examples(
                {
                    name: values[rows, :bound] if name in sequence_names else values[rows]
                    for name, values in features.items()
                }
            )
        for row, record in zip(rows.tolist(), records_of_bin, strict=True):
            serialized[row] = record
        entry = counts.per_length.setdefault(bound, BinStats())
        entry.instances += len(rows)
        entry.tokens += int(lengths[rows].sum())
        entry.masked_tokens += int(masked_counts[rows].sum())
        entry.random_next += int(random_next[rows].sum())
    counts.tokens += int(lengths.sum())
    counts.masked_tokens += int(masked_counts.sum())
    return list(zip(bounds[bin_index].tolist(), serialized, strict=True))


def _mask(
    batch: Sequence[PendingInstance],
    input_ids: np.ndarray,
    lengths: np.ndarray,
    pair_candidates: np.ndarray,
    config: EncodingConfig,
) -> MaskedLmBatch:
    """The batch's masked-LM arrays: computed from the draws, or gathered when already masked."""
    num_rows, width = input_ids.shape
    predictions = config.max_predictions_per_seq
    draws = [instance.draws for instance in batch if instance.draws is not None]
    if len(draws) == num_rows:
        candidates = pair_candidates.copy()  # (N, S) bool
        given = [(row, i.candidates) for row, i in enumerate(batch) if i.candidates is not None]
        if given:  # RoBERTa blocks: their own candidates, set in one scatter.
            rows = np.array([row for row, _ in given])
            candidates[rows] = False
            sizes = [len(positions) for _, positions in given]
            candidates[np.repeat(rows, sizes), np.concatenate([c for _, c in given])] = True
        return mask_batch(
            input_ids,
            lengths,
            candidates,
            draws_batch(draws, lengths, width),
            config.masked_lm_prob,
            predictions,
            config.vocab_size,
            config.mask_id,
        )
    done = [instance.masked for instance in batch if instance.masked is not None]
    if len(done) != num_rows:
        raise ValueError("Each instance needs its masking draws or its masked-LM predictions.")
    counts = np.array([len(masked.positions) for masked in done])  # (N,)
    if counts.max() > predictions:
        raise ValueError(f"{counts.max()} predictions do not fit {predictions}.")
    return MaskedLmBatch(
        _scatter_rows((num_rows, width), [m.output_ids for m in done], np.int32),
        _scatter_rows((num_rows, predictions), [m.positions for m in done], np.int64),
        _scatter_rows((num_rows, predictions), [m.label_ids for m in done], np.int32),
        counts,
    )

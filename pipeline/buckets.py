"""Buckets of documents: where random-next segments come from, and what bounds memory.

No worker holds the corpus. Each document goes to bucket
`stable_seed(seed, "bucket", doc_id) % num_buckets`, with
`num_buckets = ceil(num_documents / documents_per_bucket)` (the document count is a side
input), so a bucket is a seeded-random sample of the corpus of about
`documents_per_bucket` documents. A worker holds one bucket; random-next segments are drawn
from the bucket's other documents. A bucket of one document cannot make random pairs; that
is counted (see `pipeline.instances`).

Deterministic: a bucket's documents are sorted by id, and each (document, dupe pass) draws
from its own `stable_rng(seed, "instances", doc_id, pass)`, so the output set does not
depend on the runner, the worker count or the order elements arrive in.

The dupe passes loop inside the bucket, so the corpus goes through the shuffle once, not
`dupe_factor` times (re-drawing the buckets per pass would only change which documents
random-next segments come from).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator, Sequence

import apache_beam as beam
import numpy as np

from bert_keras import records
from pipeline import metrics
from pipeline.documents import TokenizedDocument
from pipeline.instances import PairingStats, create_instances_from_document
from pipeline.masking import create_masked_lm_predictions
from pipeline.options import PretrainingDataOptions
from pipeline.packing import PackingStats, pack_sentences
from pipeline.randomness import stable_rng, stable_seed
from pipeline.writer import sequence_features, serialize_instance


def num_buckets(num_documents: int, documents_per_bucket: int) -> int:
    return max(1, math.ceil(num_documents / documents_per_bucket))


def bucket_of(doc_id: str, seed: int, buckets: int) -> int:
    return stable_seed(seed, "bucket", doc_id) % buckets


@dataclasses.dataclass
class InstanceStats(PairingStats, PackingStats):
    tokens: int = 0
    masked_tokens: int = 0


def record_spec(
    options: PretrainingDataOptions, max_seq_length: int | None = None
) -> records.RecordSpec:
    """The spec of the records of `options` (padded to `max_seq_length`, a length bin)."""
    return records.RecordSpec(
        max_seq_length or options.max_seq_length,
        options.max_predictions_per_seq,
        has_masked_lm=options.has_masked_lm,
        has_next_sentence=options.has_next_sentence,
    )


def bin_of(length: int, bins: Sequence[int]) -> int:
    """The smallest bound of `bins` (ascending) >= `length`."""
    index = bisect.bisect_left(bins, length)
    if index == len(bins):
        raise ValueError(f"Instance of {length} tokens is longer than every bin {list(bins)}.")
    return bins[index]


@dataclasses.dataclass
class BinStats:
    """What a length bin's summary counts (the rest of the counters are shared)."""

    instances: int = 0
    random_next: int = 0
    tokens: int = 0
    masked_tokens: int = 0


def instances_from_bucket(
    documents: Iterable[TokenizedDocument],
    options: PretrainingDataOptions,
    vocab_size: int,
    cls_id: int,
    sep_id: int,
    mask_id: int,
    stats: InstanceStats,
) -> Iterator[bytes]:
    """Serialized examples of every (document, dupe pass) of one bucket."""
    for _, record in binned_instances_from_bucket(
        documents, options, vocab_size, cls_id, sep_id, mask_id, stats
    ):
        yield record


def binned_instances_from_bucket(
    documents: Iterable[TokenizedDocument],
    options: PretrainingDataOptions,
    vocab_size: int,
    cls_id: int,
    sep_id: int,
    mask_id: int,
    stats: InstanceStats,
    bins: Sequence[int] = (),
    bin_stats: dict[int, BinStats] | None = None,
) -> Iterator[tuple[int, bytes]]:
    """(record length, serialized example) of every (document, dupe pass) of one bucket.

    `bins`: ascending record lengths, the last `options.max_seq_length` (see
    `PretrainingDataOptions.bins_for`); each instance is padded to the smallest one >= its
    length. The instances, their masks and the random draws are the same whatever the
    bins: only the padding of each record differs. `()`: every record has
    `options.max_seq_length`. `bin_stats` (optional) counts per bin.
    """
    bins = tuple(bins) or (options.max_seq_length,)
    if bins[-1] != options.max_seq_length:
        raise ValueError(f"The last bin of {list(bins)} must be {options.max_seq_length}.")
    specs = {bound: record_spec(options, bound) for bound in bins}

    def count(bound: int, tokens: int, masked: int, random_next: bool = False) -> None:
        if bin_stats is not None:
            entry = bin_stats.setdefault(bound, BinStats())
            entry.instances += 1
            entry.tokens += tokens
            entry.masked_tokens += masked
            entry.random_next += int(random_next)

    if options.objective == "roberta":
        for length, masked_count, record_of in packed_from_bucket(
            documents, options, vocab_size, cls_id, sep_id, mask_id, stats
        ):
            bound = bin_of(length, bins)
            count(bound, length, masked_count)
            yield bound, record_of(specs[bound])
        return
    has_masked_lm = options.has_masked_lm
    docs = sorted(documents, key=lambda d: d.doc_id)
    for dupe_pass in range(options.dupe_factor):
        for index, document in enumerate(docs):
            rng = stable_rng(options.random_seed, "instances", document.doc_id, dupe_pass)
            for instance in create_instances_from_document(
                docs,
                index,
                options.max_seq_length,
                options.short_seq_prob,
                cls_id,
                sep_id,
                rng,
                stats,
            ):
                length = len(instance.input_ids)
                stats.tokens += length
                bound = bin_of(length, bins)
                spec = specs[bound]
                if not has_masked_lm:
                    count(bound, length, 0, instance.is_random_next)
                    yield (
                        bound,
                        records.serialize_example(
                            sequence_features(
                                instance.input_ids,
                                instance.segment_ids,
                                spec,
                                next_sentence_label=int(instance.is_random_next),
                            ),
                            spec,
                        ),
                    )
                    continue
                masked = create_masked_lm_predictions(
                    instance.input_ids,
                    instance.num_a,
                    options.masked_lm_prob,
                    options.max_predictions_per_seq,
                    vocab_size,
                    mask_id,
                    rng,
                    instance.word_starts if options.do_whole_word_mask else None,
                    max_ngram_size=options.max_ngram_size,
                )
                stats.masked_tokens += len(masked.positions)
                count(bound, length, len(masked.positions), instance.is_random_next)
                yield bound, serialize_instance(instance, masked, spec)


def packed_from_bucket(
    documents: Iterable[TokenizedDocument],
    options: PretrainingDataOptions,
    vocab_size: int,
    cls_id: int,
    sep_id: int,
    mask_id: int,
    stats: InstanceStats,
) -> Iterator[tuple[int, int, Callable[[records.RecordSpec], bytes]]]:
    """RoBERTa records of one bucket (see `pipeline.packing`): `options.num_passes` passes.

    full_sentences: per pass, the bucket's documents in a seeded order, packed across
    boundaries, masked from one rng per (bucket, pass). doc_sentences: per document and
    pass, its own rng (as the BERT objective).

    Yields (length, masked positions, serialize) per block: `serialize(spec)` writes the
    block padded to `spec.max_seq_length` (the caller picks its length bin).
    """
    docs = sorted(documents, key=lambda d: d.doc_id)
    if not docs:
        return
    for dupe_pass in range(options.num_passes):
        if options.packing == "full_sentences":
            order = list(docs)
            rng = stable_rng(options.random_seed, "packing_order", docs[0].doc_id, dupe_pass)
            rng.shuffle(order)
            groups = [(order, rng)]
        else:
            groups = [
                ([d], stable_rng(options.random_seed, "instances", d.doc_id, dupe_pass))
                for d in docs
            ]
        for group, rng in groups:
            for block in pack_sentences(
                group,
                options.max_seq_length,
                cls_id,
                sep_id,
                cross_documents=options.packing == "full_sentences",
                stats=stats,
            ):
                stats.tokens += len(block.input_ids)
                masked = None
                if options.has_masked_lm:
                    masked = create_masked_lm_predictions(
                        block.input_ids,
                        0,
                        options.masked_lm_prob,
                        options.max_predictions_per_seq,
                        vocab_size,
                        mask_id,
                        rng,
                        block.word_starts if options.do_whole_word_mask else None,
                        candidates=block.candidates(),
                        max_ngram_size=options.max_ngram_size,
                    )
                    stats.masked_tokens += len(masked.positions)
                segment_ids = np.zeros(len(block.input_ids), np.int32)  # (L,)

                def serialize(spec, ids=block.input_ids, segments=segment_ids, masked=masked):
                    return records.serialize_example(
                        sequence_features(ids, segments, spec, masked), spec
                    )

                yield (
                    len(block.input_ids),
                    len(masked.positions) if masked is not None else 0,
                    serialize,
                )


def bin_suffix(bound: int) -> str:
    """The name part of a length bin: `bin064` (counters `/bin064`, shards `PREFIX-bin064-`)."""
    return f"bin{bound:03d}"


class CreateInstancesFn(beam.DoFn):
    """(bucket, documents) -> serialized examples; the vocab is read once per worker.

    With `bins`, each record goes to the tagged output `bin_suffix(bound)` of its bin.
    """

    def __init__(
        self,
        options: PretrainingDataOptions,
        counter_suffix: str = "",
        bins: Sequence[int] = (),
    ):
        self._options = options
        self._suffix = counter_suffix
        self._bins = tuple(bins)
        self._ids: tuple[int, int, int, int] | None = None

    def setup(self):
        from bert_keras.tokenization import CLS_TOKEN, MASK_TOKEN, SEP_TOKEN, load_vocab

        vocab = load_vocab(self._options.vocab_file)
        self._ids = (
            len(vocab),
            vocab.index(CLS_TOKEN),
            vocab.index(SEP_TOKEN),
            vocab.index(MASK_TOKEN),
        )

    def process(self, element: tuple[int, Iterable[TokenizedDocument]]):
        assert self._ids is not None
        _, documents = element
        stats = InstanceStats()
        bin_stats: dict[int, BinStats] = {}
        if self._bins:
            for bound, record in binned_instances_from_bucket(
                documents, self._options, *self._ids, stats, self._bins, bin_stats
            ):
                yield beam.pvalue.TaggedOutput(bin_suffix(bound), record)
        else:
            yield from instances_from_bucket(documents, self._options, *self._ids, stats)
        for name, value in (
            (metrics.BUCKETS, 1),
            (metrics.INSTANCES, stats.instances),
            (metrics.INSTANCES_RANDOM_NEXT, stats.random_next),
            (metrics.RANDOM_NEXT_UNAVAILABLE, stats.random_next_unavailable),
            (metrics.CHUNKS_SKIPPED_NO_RANDOM_DOCUMENT, stats.chunks_skipped_no_random_document),
            (metrics.TOKENS, stats.tokens),
            (metrics.MASKED_TOKENS, stats.masked_tokens),
            (metrics.INSTANCES_CROSSING_DOCUMENTS, stats.instances_crossing_documents),
            (metrics.SENTENCES_SPLIT, stats.sentences_split),
        ):
            metrics.inc(name, value)
            if self._suffix:  # Several output sets: each also counted on its own.
                metrics.inc(name + self._suffix, value)
        for bound, counts in bin_stats.items():  # Each length bin's own counters.
            suffix = f"{self._suffix}/{bin_suffix(bound)}"
            metrics.inc(metrics.INSTANCES + suffix, counts.instances)
            metrics.inc(metrics.INSTANCES_RANDOM_NEXT + suffix, counts.random_next)
            metrics.inc(metrics.TOKENS + suffix, counts.tokens)
            metrics.inc(metrics.MASKED_TOKENS + suffix, counts.masked_tokens)


class CreateInstances(beam.PTransform):
    """TokenizedDocuments -> serialized examples, through seeded-hash buckets.

    With `bins` (`PretrainingDataOptions.bins_for`): a dict {bound: PCollection of the
    records padded to that bound} instead of one PCollection.
    """

    def __init__(
        self,
        options: PretrainingDataOptions,
        counter_suffix: str = "",
        bins: Sequence[int] = (),
    ):
        super().__init__()
        self._options = options
        self._counter_suffix = counter_suffix
        self._bins = tuple(bins)

    def expand(self, documents):
        options = self._options
        count = documents | "CountDocuments" >> beam.combiners.Count.Globally()

        def key_by_bucket(document: TokenizedDocument, num_documents: int):
            buckets = num_buckets(num_documents, options.documents_per_bucket)
            return bucket_of(document.doc_id, options.random_seed, buckets), document

        grouped = (
            documents
            | "KeyByBucket" >> beam.Map(key_by_bucket, beam.pvalue.AsSingleton(count))
            | "GroupBuckets" >> beam.GroupByKey()
        )
        create = CreateInstancesFn(options, self._counter_suffix, self._bins)
        if not self._bins:
            return grouped | "PairMaskSerialize" >> beam.ParDo(create)
        tags = [bin_suffix(bound) for bound in self._bins]
        outputs = grouped | "PairMaskSerialize" >> beam.ParDo(create).with_outputs(*tags)
        return {bound: outputs[tag] for bound, tag in zip(self._bins, tags, strict=True)}

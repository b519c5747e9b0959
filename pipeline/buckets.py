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

import dataclasses
import functools
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence

import apache_beam as beam
import numpy as np

from pipeline import metrics
from pipeline.documents import TokenizedDocument
from pipeline.encoding import (
    BinStats,
    EncodedCounts,
    EncodingConfig,
    PendingInstance,
    encode_instances,
)
from pipeline.instances import (
    PairingStats,
    pair_spans_from_document,
    sentence_offsets_of,
)
from pipeline.masking import MaskedLm, create_masked_lm_predictions, masking_draws
from pipeline.options import PretrainingDataOptions
from pipeline.packing import PackingStats, pack_sentences
from pipeline.randomness import stable_rng, stable_seed


def num_buckets(num_documents: int, documents_per_bucket: int) -> int:
    return max(1, math.ceil(num_documents / documents_per_bucket))


def bucket_of(doc_id: str, seed: int, buckets: int) -> int:
    return stable_seed(seed, "bucket", doc_id) % buckets


@dataclasses.dataclass
class InstanceStats(PairingStats, PackingStats):
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
    config = EncodingConfig(
        max_seq_length=options.max_seq_length,
        cls_id=cls_id,
        sep_id=sep_id,
        max_predictions_per_seq=options.max_predictions_per_seq,
        masked_lm_prob=options.masked_lm_prob,
        vocab_size=vocab_size,
        mask_id=mask_id,
        has_masked_lm=options.has_masked_lm,
        has_next_sentence=options.has_next_sentence,
        bins=bins,
    )
    if options.objective == "roberta":
        pending = packed_from_bucket(documents, options, vocab_size, mask_id, cls_id, sep_id, stats)
    else:
        pending = paired_from_bucket(documents, options, vocab_size, mask_id, cls_id, sep_id, stats)
    counts = EncodedCounts()
    yield from encode_instances(pending, config, counts)
    stats.tokens += counts.tokens
    stats.masked_tokens += counts.masked_tokens
    if bin_stats is not None:
        for bound, counted in counts.per_length.items():
            entry = bin_stats.setdefault(bound, BinStats())
            entry.instances += counted.instances
            entry.tokens += counted.tokens
            entry.masked_tokens += counted.masked_tokens
            entry.random_next += counted.random_next


def _masking_of(
    rng: random.Random,
    options: PretrainingDataOptions,
    vocab_size: int,
    mask_id: int,
    length: int,
    sequence: Callable[[], tuple[np.ndarray, np.ndarray | None]],
    num_a: int = 0,
    candidates: np.ndarray | None = None,
) -> tuple[bytes | None, MaskedLm | None]:
    """An instance's masking, taken from `rng` now: its draws (default masking, done later
    for the whole batch) or its predictions (whole-word or n-gram masking, done here, on
    `sequence()`: (input_ids (L,), word_starts (L,) or None), built only then)."""
    if not options.has_masked_lm:
        return None, None
    if not options.do_whole_word_mask and options.max_ngram_size == 1:
        return masking_draws(rng, length), None
    input_ids, word_starts = sequence()
    masked = create_masked_lm_predictions(
        input_ids,
        num_a,
        options.masked_lm_prob,
        options.max_predictions_per_seq,
        vocab_size,
        mask_id,
        rng,
        word_starts if options.do_whole_word_mask else None,
        candidates=candidates,
        max_ngram_size=options.max_ngram_size,
    )
    return None, masked


def paired_from_bucket(
    documents: Iterable[TokenizedDocument],
    options: PretrainingDataOptions,
    vocab_size: int,
    mask_id: int,
    cls_id: int,
    sep_id: int,
    stats: InstanceStats,
) -> Iterator[PendingInstance]:
    """BERT sentence pairs of one bucket, every (document, dupe pass) with its own rng."""
    docs = sorted(documents, key=lambda d: d.doc_id)
    sentence_offsets = [sentence_offsets_of(d) for d in docs]
    for dupe_pass in range(options.dupe_factor):
        for index, document in enumerate(docs):
            rng = stable_rng(options.random_seed, "instances", document.doc_id, dupe_pass)
            for pair in pair_spans_from_document(
                docs,
                index,
                options.max_seq_length,
                options.short_seq_prob,
                rng,
                stats,
                sentence_offsets,
            ):
                draws, masked = _masking_of(
                    rng,
                    options,
                    vocab_size,
                    mask_id,
                    len(pair.tokens_a) + len(pair.tokens_b) + 3,
                    functools.partial(pair.assemble, cls_id, sep_id),
                    num_a=len(pair.tokens_a),
                )
                yield PendingInstance(
                    (pair.tokens_a, pair.tokens_b),
                    None,
                    int(pair.is_random_next),
                    None,
                    draws,
                    masked,
                )


def packed_from_bucket(
    documents: Iterable[TokenizedDocument],
    options: PretrainingDataOptions,
    vocab_size: int,
    mask_id: int,
    cls_id: int,
    sep_id: int,
    stats: InstanceStats,
) -> Iterator[PendingInstance]:
    """RoBERTa blocks of one bucket (see `pipeline.packing`): `options.num_passes` passes.

    full_sentences: per pass, the bucket's documents in a seeded order, packed across
    boundaries, masked from one rng per (bucket, pass). doc_sentences: per document and
    pass, its own rng (as the BERT objective).
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
                candidates = block.candidates()
                draws, masked = _masking_of(
                    rng,
                    options,
                    vocab_size,
                    mask_id,
                    len(block.input_ids),
                    lambda: (block.input_ids, block.word_starts),  # noqa: B023 (called at once)
                    candidates=candidates,
                )
                yield PendingInstance(None, block.input_ids, None, candidates, draws, masked)


def bin_suffix(bound: int) -> str:
    """The name part of a length bin: `bin064` (counters `/bin064`, shards `PREFIX-bin064-`)."""
    return f"bin{bound:03d}"


RECORDS_PER_ELEMENT = 1024


class CreateInstancesFn(beam.DoFn):
    """(bucket, documents) -> lists of serialized examples; the vocab is read once per worker.

    With `bins`, each list goes to the tagged output `bin_suffix(bound)` of its bin.
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

    def _tagged(self, bound: int, batch: list[bytes]):
        return beam.pvalue.TaggedOutput(bin_suffix(bound), batch) if self._bins else batch

    def process(self, element: tuple[int, Iterable[TokenizedDocument]]):
        assert self._ids is not None
        _, documents = element
        stats = InstanceStats()
        bin_stats: dict[int, BinStats] = {}
        # Lists of records, not records: Beam's per-element cost (~4 us in and out of each
        # step) was a tenth of the job's CPU time.
        pending: dict[int, list[bytes]] = {}
        for bound, record in binned_instances_from_bucket(
            documents, self._options, *self._ids, stats, self._bins, bin_stats
        ):
            batch = pending.setdefault(bound, [])
            batch.append(record)
            if len(batch) >= RECORDS_PER_ELEMENT:
                yield self._tagged(bound, batch)
                pending[bound] = []
        for bound, batch in pending.items():
            if batch:
                yield self._tagged(bound, batch)
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
    """TokenizedDocuments -> lists of serialized examples, through seeded-hash buckets
    (`WriteShards(..., record_lists=True)` writes them).

    With `bins` (`PretrainingDataOptions.bins_for`): a dict {bound: PCollection of the
    record lists padded to that bound} instead of one PCollection.
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

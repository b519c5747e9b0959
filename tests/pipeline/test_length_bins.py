"""--length_bins: the same instances, each padded only to the smallest bin that holds it."""

from __future__ import annotations

import collections
import glob
import json
import os

import numpy as np
import pytest

from bert_keras import records
from pipeline import create_pretraining_data, metrics
from pipeline.buckets import InstanceStats, binned_instances_from_bucket, instances_from_bucket
from pipeline.options import PretrainingDataOptions, parse_args
from tests.pipeline.pipeline_test_util import (
    generate_corpus,
    read_records,
    tokenized_document,
    word_vocab,
    write_text,
    write_vocab,
)

VOCAB = word_vocab()
CLS, SEP, MASK = VOCAB.index("[CLS]"), VOCAB.index("[SEP]"), VOCAB.index("[MASK]")
REQUIRED = ["--input_file=a", "--output_file=b", "--vocab_file=v"]


def repad(serialized: bytes, max_seq_length: int) -> bytes:
    """A record padded with zeros to `max_seq_length`, serialized as the writer would."""
    found = records.spec_from_record(serialized)
    parsed = records.parse_example(serialized)
    pad = max_seq_length - found.max_seq_length
    assert pad >= 0
    features = {
        name: values.tolist() + ([0] * pad if name in records.SEQUENCE_FEATURES else [])
        for name, values in parsed.items()
    }
    spec = records.RecordSpec(
        max_seq_length,
        found.max_predictions_per_seq,
        has_masked_lm=found.has_masked_lm,
        has_next_sentence=found.has_next_sentence,
    )
    return records.serialize_example(features, spec)


def check_bin(serialized: list[bytes], bound: int, previous: int) -> None:
    """Every record has exactly `bound` positions and previous < unpadded length <= bound."""
    for record in serialized:
        parsed = records.parse_example(record)
        length = int(parsed[records.INPUT_MASK].sum())
        assert len(parsed[records.INPUT_IDS]) == bound
        assert previous < length <= bound, (previous, length, bound)


def test_length_bins_flags():
    options, _ = parse_args([*REQUIRED, "--length_bins=64,96"])
    assert options.length_bins == (64, 96)
    assert options.bins_for(128) == (64, 96, 128)
    assert parse_args(REQUIRED)[0].bins_for(128) == ()
    # Several lengths: bounds >= a set's length are ignored for that set.
    options, _ = parse_args(
        [
            *REQUIRED,
            "--max_seq_length=128,512",
            "--max_predictions_per_seq=20,80",
            "--length_bins=64,256",
        ]
    )
    assert [o.bins_for(o.max_seq_length) for o in options.per_length()] == [
        (64, 128),
        (64, 256, 512),
    ]
    for bins, message in (
        ("96,64", "strictly ascending"),
        ("64,64", "strictly ascending"),
        ("64,128", r"< --max_seq_length \(128"),
        ("4,64", ">= 5"),
        ("64,x", "integers separated by commas"),
    ):
        with pytest.raises((ValueError, SystemExit)) as error:
            parse_args([*REQUIRED, f"--length_bins={bins}"])
        if error.type is ValueError:
            assert error.match(message)
    with pytest.raises(ValueError, match=r"< --max_seq_length \(512"):
        parse_args(
            [
                *REQUIRED,
                "--max_seq_length=128,512",
                "--max_predictions_per_seq=20,80",
                "--length_bins=512",
            ]
        )


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"masking": "dynamic"},
        {"objective": "roberta", "packing": "full_sentences"},
        {"objective": "roberta", "packing": "doc_sentences", "masking": "dynamic"},
    ],
)
def test_binned_records_are_the_unbinned_ones_with_less_padding(overrides):
    rng = np.random.default_rng(3)
    docs = [
        tokenized_document(
            f"doc{d}",
            [list(rng.integers(5, 200, rng.integers(1, 12))) for _ in range(rng.integers(1, 9))],
        )
        for d in range(6)
    ]
    options = PretrainingDataOptions(
        input_file="-",
        output_file="-",
        vocab_file="-",
        max_seq_length=40,
        max_predictions_per_seq=6,
        dupe_factor=3,
        short_seq_prob=0.3,
        **overrides,
    )
    ids = (len(VOCAB), CLS, SEP, MASK)
    plain_stats, binned_stats = InstanceStats(), InstanceStats()
    plain = list(instances_from_bucket(docs, options, *ids, plain_stats))
    bins = (12, 24, 40)
    binned = list(binned_instances_from_bucket(docs, options, *ids, binned_stats, bins))
    assert plain_stats == binned_stats
    assert [repad(record, 40) for _, record in binned] == plain  # Same order, too.
    by_bin = collections.defaultdict(list)
    for bound, record in binned:
        by_bin[bound].append(record)
    assert len(by_bin) >= 2, {b: len(r) for b, r in by_bin.items()}
    for previous, bound in zip((0, *bins), bins, strict=False):
        check_bin(by_bin[bound], bound, previous)


def _run(tmp, corpus, vocab, extra):
    prefix = os.path.join(tmp, "out", "p")
    counters = create_pretraining_data.run(
        [
            f"--input_file={corpus}",
            f"--output_file={prefix}",
            f"--vocab_file={vocab}",
            "--dupe_factor=2",
            "--num_shards=2",
            "--short_seq_prob=0.3",
            "--documents_per_bucket=6",
            "--runner=DirectRunner",
            *extra,
        ]
    )
    return prefix, counters


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bins")
    text = generate_corpus(14, sentences=(1, 10), words=(2, 9), seed=4)
    return str(tmp), write_text(str(tmp / "c.txt"), text), write_vocab(str(tmp / "vocab.txt"))


def test_the_job_writes_one_set_per_bin(corpus):
    tmp, path, vocab = corpus
    lengths = ["--max_seq_length=64", "--max_predictions_per_seq=10"]
    plain, _ = _run(os.path.join(tmp, "plain"), path, vocab, [*lengths, "--noreport"])
    prefix, counters = _run(
        os.path.join(tmp, "binned"), path, vocab, [*lengths, "--length_bins=16,32"]
    )
    names = sorted(os.path.basename(p) for p in glob.glob(prefix + "-*.tfrecord"))
    assert names == [
        f"p-bin{b:03d}-0000{i}-of-00002.tfrecord" for b in (16, 32, 64) for i in range(2)
    ]
    union = []
    for previous, bound in ((0, 16), (16, 32), (32, 64)):
        serialized = read_records(f"{prefix}-bin{bound:03d}")
        assert serialized, bound
        check_bin(serialized, bound, previous)
        union += [repad(r, 64) for r in serialized]
        assert counters[f"{metrics.INSTANCES}/bin{bound:03d}"] == len(serialized)
        summary = json.load(open(f"{prefix}-bin{bound:03d}.summary.json"))
        assert summary["summary"]["instances"] == len(serialized)
        assert summary["summary"]["documents"] == 14
        report = json.load(open(f"{prefix}-bin{bound:03d}.report.json"))
        assert report["instances"] == len(serialized) and report["max_seq_length"] == bound
    assert sorted(union) == read_records(plain)  # The same multiset: same seed, same instances.
    assert counters[metrics.INSTANCES] == len(union)


@pytest.mark.slow
def test_bins_with_several_lengths(corpus):
    tmp, path, vocab = corpus
    prefix, counters = _run(
        os.path.join(tmp, "lengths"),
        path,
        vocab,
        [
            "--max_seq_length=24,48",
            "--max_predictions_per_seq=4,8",
            "--length_bins=16,32",
            "--objective=roberta",
            "--packing=doc_sentences",
            "--masking=dynamic",
            "--noreport",
        ],
    )
    sets = {(24, 16): 0, (24, 24): 16, (48, 16): 0, (48, 32): 16, (48, 48): 32}
    names = sorted(os.path.basename(p) for p in glob.glob(prefix + "-*.tfrecord"))
    assert names == sorted(
        f"p-len{length}-bin{bound:03d}-0000{i}-of-00002.tfrecord"
        for length, bound in sets
        for i in range(2)
    )
    for (length, bound), previous in sets.items():
        serialized = read_records(f"{prefix}-len{length}-bin{bound:03d}")
        check_bin(serialized, bound, previous)
        assert records.spec_from_record(serialized[0]) == records.RecordSpec(
            bound, 0, has_masked_lm=False, has_next_sentence=False
        )
        assert counters[f"{metrics.INSTANCES}/len{length}/bin{bound:03d}"] == len(serialized)
        summary = json.load(open(f"{prefix}-len{length}-bin{bound:03d}.summary.json"))
        assert summary["summary"]["instances"] == len(serialized)

"""Several --max_seq_length values: one set of shards per length from one read of the corpus."""

from __future__ import annotations

import glob
import json
import os

import pytest

from bert_keras import records
from pipeline import create_pretraining_data, metrics
from pipeline.options import parse_args
from tests.pipeline.pipeline_test_util import generate_corpus, read_records, write_text, write_vocab


def test_length_flags():
    options, _ = parse_args(
        [
            "--input_file=a",
            "--output_file=b",
            "--vocab_file=v",
            "--max_seq_length=128,512",
            "--max_predictions_per_seq=20,80",
        ]
    )
    assert options.lengths == ((128, 20), (512, 80))
    assert [
        (o.max_seq_length, o.max_predictions_per_seq, o.lengths) for o in options.per_length()
    ] == [
        (128, 20, ()),
        (512, 80, ()),
    ]
    options, _ = parse_args(["--input_file=a", "--output_file=b", "--vocab_file=v"])
    assert (options.max_seq_length, options.max_predictions_per_seq, options.lengths) == (
        128,
        20,
        (),
    )
    with pytest.raises(ValueError, match="one value per --max_seq_length"):
        parse_args(
            ["--input_file=a", "--output_file=b", "--vocab_file=v", "--max_seq_length=128,512"]
        )
    with pytest.raises(ValueError, match="distinct"):
        parse_args(
            [
                "--input_file=a",
                "--output_file=b",
                "--vocab_file=v",
                "--max_seq_length=64,64",
                "--max_predictions_per_seq=5,5",
            ]
        )


def _run(tmp, corpus, vocab, lengths, predictions):
    prefix = os.path.join(tmp, "out", "p")
    counters = create_pretraining_data.run(
        [
            f"--input_file={corpus}",
            f"--output_file={prefix}",
            f"--vocab_file={vocab}",
            f"--max_seq_length={lengths}",
            f"--max_predictions_per_seq={predictions}",
            "--dupe_factor=2",
            "--num_shards=2",
            "--documents_per_bucket=5",
            "--runner=DirectRunner",
        ]
    )
    return prefix, counters


def test_two_lengths_in_one_job_equal_two_separate_jobs(tmp_path):
    corpus = write_text(str(tmp_path / "c.txt"), generate_corpus(10, sentences=(6, 20), seed=12))
    vocab = write_vocab(str(tmp_path / "vocab.txt"))
    prefix, counters = _run(str(tmp_path / "both"), corpus, vocab, "32,64", "5,10")
    names = sorted(os.path.basename(p) for p in glob.glob(prefix + "-*.tfrecord"))
    assert names == [f"p-len{n}-0000{i}-of-00002.tfrecord" for n in (32, 64) for i in range(2)]
    assert counters[metrics.DOCUMENTS_READ] == 10  # Read once, not once per length.
    total = 0
    for length, predictions in ((32, 5), (64, 10)):
        serialized = read_records(f"{prefix}-len{length}")
        assert records.spec_from_record(serialized[0]) == records.RecordSpec(length, predictions)
        assert len(serialized) == counters[f"{metrics.INSTANCES}/len{length}"] > 0
        total += len(serialized)
        single, _ = _run(
            str(tmp_path / f"only{length}"), corpus, vocab, str(length), str(predictions)
        )
        assert serialized == read_records(single)
        summary = json.load(open(f"{prefix}-len{length}.summary.json"))
        assert summary["summary"]["instances"] == len(serialized)
        assert summary["summary"]["documents"] == 10
        report = json.load(open(f"{prefix}-len{length}.report.json"))
        assert report["instances"] == len(serialized) and report["max_seq_length"] == length
    assert counters[metrics.INSTANCES] == total

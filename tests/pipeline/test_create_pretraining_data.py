"""The whole job on generated corpora: records, statistics, shards, bad input, determinism."""

from __future__ import annotations

import collections
import glob
import json
import math
import os
import re
import sys

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from bert_keras import records
from bert_keras.tokenization import BertWordPieceTokenizer
from pipeline import create_pretraining_data, metrics
from pipeline.buckets import (
    CreateInstances,
    InstanceStats,
    bucket_of,
    instances_from_bucket,
    num_buckets,
)
from pipeline.masking import num_to_predict
from pipeline.options import PretrainingDataOptions, parse_args
from tests.pipeline.pipeline_test_util import (
    generate_corpus,
    read_records,
    tokenized_document,
    word_vocab,
    write_text,
    write_vocab,
)

IN_PROCESS = ["--runner=DirectRunner"]
MAX_SEQ, MAX_PRED = 64, 10
VOCAB = word_vocab()
CLS, SEP, MASK = VOCAB.index("[CLS]"), VOCAB.index("[SEP]"), VOCAB.index("[MASK]")


def _run(tmp, inputs, extra=(), beam_args=IN_PROCESS, vocab=None):
    vocab = vocab or write_vocab(os.path.join(tmp, "vocab.txt"))
    prefix = os.path.join(tmp, "out", "pretrain")
    argv = [
        f"--input_file={inputs}",
        f"--output_file={prefix}",
        f"--vocab_file={vocab}",
        f"--max_seq_length={MAX_SEQ}",
        f"--max_predictions_per_seq={MAX_PRED}",
        *extra,
        *beam_args,
    ]
    counters = create_pretraining_data.run(argv)
    return prefix, counters


def test_flags_are_gbs_and_the_rest_goes_to_beam():
    options, beam_args = parse_args(
        [
            "--input_file=a",
            "--output_file=b",
            "--vocab_file=v",
            "--runner=DirectRunner",
            "--direct_num_workers=2",
            "--nodo_lower_case",
            "--do_whole_word_mask",
        ]
    )
    assert beam_args == ["--runner=DirectRunner", "--direct_num_workers=2"]
    assert (options.max_seq_length, options.max_predictions_per_seq, options.random_seed) == (
        128,
        20,
        12345,
    )
    assert (options.dupe_factor, options.masked_lm_prob, options.short_seq_prob) == (10, 0.15, 0.1)
    assert (options.do_lower_case, options.do_whole_word_mask) == (False, True)
    options, _ = parse_args(
        ["--input_file=a", "--output_file=b", "--vocab_file=v", "--do_lower_case=false"]
    )
    assert not options.do_lower_case
    with pytest.raises(ValueError, match="--masked_lm_prob"):
        parse_args(["--input_file=a", "--output_file=b", "--vocab_file=v", "--masked_lm_prob=0"])


def test_create_instances_transform_matches_the_pure_function(tmp_path):
    docs = [
        tokenized_document(f"doc{d}", [[10 + (d + s) % 200] * (3 + s % 5) for s in range(9)])
        for d in range(7)
    ]
    options = PretrainingDataOptions(
        input_file="-",
        output_file="-",
        vocab_file="-",
        max_seq_length=32,
        max_predictions_per_seq=5,
        dupe_factor=2,
        documents_per_bucket=3,
    )
    buckets = collections.defaultdict(list)
    for doc in docs:
        buckets[bucket_of(doc.doc_id, options.random_seed, num_buckets(len(docs), 3))].append(doc)
    assert len(buckets) > 1
    expected = [
        record
        for bucket in buckets.values()
        for record in instances_from_bucket(
            bucket, options, len(VOCAB), CLS, SEP, MASK, InstanceStats()
        )
    ]

    vocab_file = write_vocab(str(tmp_path / "vocab.txt"))
    options = PretrainingDataOptions(**{**options.__dict__, "vocab_file": vocab_file})
    with BeamTestPipeline(options=PipelineOptions(IN_PROCESS)) as p:
        lists = p | beam.Create(list(reversed(docs))) | CreateInstances(options)
        out = lists | beam.FlatMap(lambda records: records)
        assert_that(out, equal_to(expected))


@pytest.fixture(scope="module")
def generated_run(tmp_path_factory):
    """40 long documents, dupe_factor 3: enough instances for statistics, still quick."""
    tmp = str(tmp_path_factory.mktemp("generated"))
    text = generate_corpus(40, sentences=(30, 60), words=(3, 12), seed=1)
    corpus = write_text(os.path.join(tmp, "corpus", "part-0.txt"), text)
    prefix, counters = _run(
        tmp, os.path.join(tmp, "corpus", "*.txt"), ["--dupe_factor=3", "--num_shards=4"]
    )
    return tmp, corpus, prefix, counters, read_records(prefix)


def test_records_roundtrip_through_the_reader(generated_run):
    tmp, _, prefix, counters, serialized = generated_run
    assert sorted(os.path.basename(p) for p in glob.glob(prefix + "-*")) == [
        f"pretrain-0000{i}-of-00004.tfrecord" for i in range(4)
    ]
    assert len(serialized) == counters[metrics.INSTANCES] > 100
    spec = records.RecordSpec(MAX_SEQ, MAX_PRED)
    assert records.spec_from_record(serialized[0]) == spec
    dataset = records.make_dataset(prefix + "-*", spec, batch_size=32, shuffle=False, repeat=False)
    total = 0
    for batch in dataset:
        inputs, labels = records.to_model_inputs(batch)
        assert inputs["input_word_ids"].shape[1:] == (MAX_SEQ,)
        assert labels["masked_lm_ids"].dtype == tf.int32
        assert labels["masked_lm_weights"].dtype == tf.float32
        assert labels["next_sentence_labels"].shape[1:] == (1,)
        total += int(inputs["input_word_ids"].shape[0])
    assert total == len(serialized)
    summary = json.load(open(prefix + ".summary.json"))
    assert summary["summary"]["instances"] == len(serialized)


def test_layout_masks_and_labels_are_exact(generated_run):
    _, _, _, counters, serialized = generated_run
    masked_total = 0
    for record in serialized:
        r = records.parse_example(record)
        length = int(r["input_mask"].sum())
        assert r["input_mask"].tolist() == [1] * length + [0] * (MAX_SEQ - length)
        ids, segments = r["input_ids"], r["segment_ids"]
        # Reconstruct the unmasked ids: labels go back at their positions.
        n = int(r["masked_lm_weights"].sum())
        positions = r["masked_lm_positions"][:n]
        original = ids.copy()
        original[positions] = r["masked_lm_ids"][:n]
        seps = np.flatnonzero(original[:length] == SEP).tolist()
        assert original[0] == CLS and len(seps) == 2 and seps[1] == length - 1
        assert segments.tolist() == [0] * (seps[0] + 1) + [1] * (length - seps[0] - 1) + [0] * (
            MAX_SEQ - length
        )
        assert (ids[length:] == 0).all()
        assert n == num_to_predict(length, 0.15, MAX_PRED)  # The formula, per instance.
        assert r["masked_lm_weights"].tolist() == [1.0] * n + [0.0] * (MAX_PRED - n)
        assert positions.tolist() == sorted(set(positions.tolist()))
        assert not {0, seps[0], seps[1]} & set(positions.tolist())
        assert (r["masked_lm_positions"][n:] == 0).all() and (r["masked_lm_ids"][n:] == 0).all()
        masked_total += n
    assert masked_total == counters[metrics.MASKED_TOKENS]


def test_80_10_10_and_label_share(generated_run):
    _, _, _, counters, serialized = generated_run
    kinds = collections.Counter()
    labels = []
    for record in serialized:
        r = records.parse_example(record)
        n = int(r["masked_lm_weights"].sum())
        seen = r["input_ids"][r["masked_lm_positions"][:n]]
        truth = r["masked_lm_ids"][:n]
        kinds["mask"] += int((seen == MASK).sum())
        kinds["keep"] += int(((seen == truth) & (seen != MASK)).sum())
        kinds["random"] += int(((seen != truth) & (seen != MASK)).sum())
        labels.append(int(r["next_sentence_labels"][0]))
    total = sum(kinds.values())

    def within(count, p):
        return abs(count - total * p) <= 5 * math.sqrt(total * p * (1 - p))

    # A random replacement can hit the original id (1/V) or [MASK] (1/V): negligible, in the bound.
    assert (
        within(kinds["mask"], 0.8) and within(kinds["keep"], 0.1) and within(kinds["random"], 0.1)
    ), kinds
    share = np.mean(labels)
    # GB's rules give a little over 0.5: a one-sentence chunk always gets a random B.
    assert 0.45 < share < 0.62, share
    assert counters[metrics.INSTANCES_RANDOM_NEXT] == sum(labels)
    assert counters[metrics.RANDOM_NEXT_UNAVAILABLE] == 0


def test_every_document_is_accounted_for_and_ids_are_the_tokenizers(generated_run):
    tmp, corpus, _, counters, serialized = generated_run
    assert counters[metrics.DOCUMENTS_READ] == 40
    assert counters[metrics.DOCUMENTS_READ] == (
        counters[metrics.DOCUMENTS_TOKENIZED] + counters[metrics.DOCUMENTS_SKIPPED_NO_TOKENS]
    )
    tokenizer = BertWordPieceTokenizer(VOCAB)
    documents = open(corpus, encoding="utf-8").read().strip("\n").split("\n\n")
    doc_ids = [
        np.concatenate(tokenizer(np.array(d.split("\n"))).to_list()).astype(np.int32).tobytes()
        for d in documents
    ]
    for record in serialized[:200]:
        r = records.parse_example(record)
        n = int(r["masked_lm_weights"].sum())
        original = r["input_ids"].copy()
        original[r["masked_lm_positions"][:n]] = r["masked_lm_ids"][:n]
        sep = int(np.flatnonzero(original == SEP)[0])
        segment_a = original[1:sep].astype(np.int32).tobytes()
        assert any(segment_a in ids for ids in doc_ids)


def test_gzip_shards_whole_word_masking(tmp_path):
    text = generate_corpus(6, sentences=(5, 10), seed=2)
    text += "\n" + "unaffable un unaffable hello\nworld unaffable .\n" * 6
    write_text(str(tmp_path / "c.txt"), text)
    prefix, counters = _run(
        str(tmp_path),
        str(tmp_path / "c.txt"),
        ["--compression=GZIP", "--num_shards=3", "--do_whole_word_mask", "--dupe_factor=2"],
    )
    names = sorted(os.path.basename(p) for p in glob.glob(prefix + "-*"))
    assert names == [f"pretrain-0000{i}-of-00003.tfrecord.gz" for i in range(3)]
    serialized = read_records(prefix)
    assert len(serialized) == counters[metrics.INSTANCES] > 0
    unaffable = [VOCAB.index(t) for t in ("un", "##aff", "##able")]
    whole = partial = 0
    for record in serialized:
        r = records.parse_example(record)
        n = int(r["masked_lm_weights"].sum())
        positions = set(r["masked_lm_positions"][:n].tolist())
        original = r["input_ids"].copy()
        original[r["masked_lm_positions"][:n]] = r["masked_lm_ids"][:n]
        for start in range(len(original) - 2):
            if original[start : start + 3].tolist() == unaffable:
                hit = {start, start + 1, start + 2} & positions
                whole += len(hit) == 3
                partial += 0 < len(hit) < 3
    assert partial == 0 and whole > 0


def test_runner_chosen_shard_count(tmp_path):
    write_text(str(tmp_path / "c.txt"), generate_corpus(5, seed=7))
    prefix, counters = _run(
        str(tmp_path), str(tmp_path / "c.txt"), ["--num_shards=0", "--dupe_factor=1"]
    )
    files = glob.glob(prefix + "-*-of-*.tfrecord")
    assert files and len(read_records(prefix)) == counters[metrics.INSTANCES] > 0


def test_bad_input_is_skipped_and_counted(tmp_path):
    corpus = tmp_path / "corpus"
    write_text(str(corpus / "good.txt"), generate_corpus(4, seed=3))
    write_text(str(corpus / "empty.txt"), b"")
    write_text(str(corpus / "blank.txt"), b"  \n\t\n\r\n   \n")
    write_text(str(corpus / "bytes.txt"), b"w1 \xff\xfe w2\r\nw3 w4\r\n\r\n\x00\x01\x7f\n\n")
    write_text(str(corpus / "long.txt"), ("w5 " * 350_000 + "\nw6 w7\n").encode())  # A 1 MB line.
    prefix, counters = _run(str(tmp_path), str(corpus / "*.txt"), ["--dupe_factor=1"])
    assert counters[metrics.FILES_READ] == 5
    assert counters[metrics.FILES_WITHOUT_DOCUMENTS] == 2
    assert counters[metrics.LINES_INVALID_UTF8] == 1
    assert counters[metrics.DOCUMENTS_SKIPPED_NO_TOKENS] == 1  # The NUL/control-only document.
    assert counters[metrics.DOCUMENTS_READ] == (
        counters[metrics.DOCUMENTS_TOKENIZED] + counters[metrics.DOCUMENTS_SKIPPED_NO_TOKENS]
    )
    serialized = read_records(prefix)
    assert len(serialized) == counters[metrics.INSTANCES] > 0
    assert all(int(records.parse_example(r)["input_mask"].sum()) <= MAX_SEQ for r in serialized)


@pytest.mark.parametrize(
    "case,message",
    [
        ("unmatched", "--input_file pattern '.*nothing\\*.txt' matches no file"),
        ("missing_vocab", "does not exist"),
        ("malformed_vocab", r"lacks the reserved token\(s\) \['\[MASK\]'\]"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(tmp_path, monkeypatch, capsys, case, message):
    write_text(str(tmp_path / "c.txt"), "w1 w2\nw3\n")
    vocab = write_vocab(str(tmp_path / "vocab.txt"))
    inputs = str(tmp_path / "c.txt")
    if case == "unmatched":
        inputs += f",{tmp_path}/nothing*.txt"
    elif case == "missing_vocab":
        vocab = str(tmp_path / "no_vocab.txt")
    else:
        vocab = write_vocab(str(tmp_path / "bad_vocab.txt"), [t for t in VOCAB if t != "[MASK]"])
    argv = [
        "prog",
        f"--input_file={inputs}",
        f"--output_file={tmp_path}/out",
        f"--vocab_file={vocab}",
    ]
    monkeypatch.setattr(sys, "argv", argv + IN_PROCESS)
    with pytest.raises(SystemExit) as exit_info:
        create_pretraining_data.cli()
    assert str(exit_info.value).startswith("create_pretraining_data: error: ")
    assert re.search(message, str(exit_info.value)), exit_info.value
    if case != "unmatched":
        assert vocab in str(exit_info.value)


def test_one_document_corpus_makes_no_random_pairs(tmp_path):
    write_text(str(tmp_path / "one.txt"), generate_corpus(1, sentences=(20, 20), seed=4))
    prefix, counters = _run(str(tmp_path), str(tmp_path / "one.txt"), ["--dupe_factor=2"])
    labels = [
        int(records.parse_example(r)["next_sentence_labels"][0]) for r in read_records(prefix)
    ]
    assert labels and set(labels) == {0}
    assert counters[metrics.RANDOM_NEXT_UNAVAILABLE] > 0


@pytest.mark.slow
def test_same_records_in_process_and_with_two_worker_processes(tmp_path):
    write_text(str(tmp_path / "corpus" / "a.txt"), generate_corpus(12, sentences=(4, 12), seed=5))
    write_text(str(tmp_path / "corpus" / "b.txt"), generate_corpus(9, sentences=(4, 12), seed=6))
    vocab = write_vocab(str(tmp_path / "vocab.txt"))
    inputs = str(tmp_path / "corpus" / "*.txt")
    extra = ["--dupe_factor=2", "--documents_per_bucket=4", "--num_shards=2"]
    a, counters_a = _run(str(tmp_path / "a"), inputs, extra, IN_PROCESS, vocab)
    b, counters_b = _run(
        str(tmp_path / "b"),
        inputs,
        extra,
        [
            "--runner=DirectRunner",
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=2",
        ],
        vocab,
    )
    records_a, records_b = read_records(a), read_records(b)
    assert len(records_a) == counters_a[metrics.INSTANCES] > 0
    assert records_a == records_b
    assert counters_b[metrics.BUCKETS] == counters_a[metrics.BUCKETS] > 1


def test_records_do_not_depend_on_where_the_corpus_lies(tmp_path):
    """Document ids (the seeds of every choice) name files below the inputs' common folder."""
    text = generate_corpus(6, sentences=(4, 10), seed=11)
    vocab = write_vocab(str(tmp_path / "vocab.txt"))
    outputs = []
    for where in ("here/corpus", "elsewhere/deeper/corpus"):
        write_text(str(tmp_path / where / "a.txt"), text)
        write_text(str(tmp_path / where / "sub" / "b.txt"), text[: len(text) // 2])
        inputs = f"{tmp_path / where}/*.txt,{tmp_path / where}/sub/*.txt"
        prefix, _ = _run(str(tmp_path / where), inputs, ["--dupe_factor=2"], vocab=vocab)
        outputs.append(read_records(prefix))
    assert outputs[0] and outputs[0] == outputs[1]

"""RoBERTa formats: packing rules (pure) and the whole job with --objective=roberta."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from bert_keras import records
from pipeline import create_pretraining_data, metrics
from pipeline.masking import num_to_predict
from pipeline.options import parse_args
from pipeline.packing import PackingStats, pack_sentences
from tests.pipeline.pipeline_test_util import (
    generate_corpus,
    read_records,
    tokenized_document,
    word_vocab,
    write_text,
    write_vocab,
)

CLS, SEP = 2, 3
IN_PROCESS = ["--runner=DirectRunner"]
VOCAB = word_vocab()
V_CLS, V_SEP, V_MASK = VOCAB.index("[CLS]"), VOCAB.index("[SEP]"), VOCAB.index("[MASK]")


def _docs():
    # Sentence lengths: doc a 3,4,2; doc b 5,9 (over-long for max_seq_length 10); doc c 1.
    a = tokenized_document("a", [[10] * 3, [11] * 4, [12] * 2])
    b = tokenized_document("b", [[20] * 5, list(range(30, 39))])
    c = tokenized_document("c", [[40]])
    return [a, b, c]


def test_full_sentences_cross_documents_with_an_extra_separator():
    stats = PackingStats()
    blocks = list(pack_sentences(_docs(), 10, CLS, SEP, cross_documents=True, stats=stats))
    # max_num_tokens = 8: [3+4], [2 SEP 5], [9 cut: 8], [1 (rest of 9) SEP 1].
    assert [b.input_ids.tolist() for b in blocks] == [
        [CLS, 10, 10, 10, 11, 11, 11, 11, SEP],
        [CLS, 12, 12, SEP, 20, 20, 20, 20, 20, SEP],
        [CLS, *range(30, 38), SEP],
        [CLS, 38, SEP, 40, SEP],
    ]
    assert [b.separators.tolist() for b in blocks] == [[], [3], [], [2]]
    assert [b.num_documents for b in blocks] == [1, 2, 1, 2]
    assert blocks[1].candidates().tolist() == [1, 2, 4, 5, 6, 7, 8]
    assert (stats.instances, stats.instances_crossing_documents, stats.sentences_split) == (4, 2, 1)
    assert all(len(b.input_ids) <= 10 for b in blocks)


def test_doc_sentences_never_cross():
    blocks = list(pack_sentences(_docs(), 10, CLS, SEP, cross_documents=False))
    assert [b.input_ids.tolist() for b in blocks] == [
        [CLS, 10, 10, 10, 11, 11, 11, 11, SEP],
        [CLS, 12, 12, SEP],
        [CLS, 20, 20, 20, 20, 20, SEP],
        [CLS, *range(30, 38), SEP],
        [CLS, 38, SEP],
        [CLS, 40, SEP],
    ]
    assert all(b.num_documents == 1 and not len(b.separators) for b in blocks)


def test_every_token_is_packed_once_in_order():
    rng = np.random.default_rng(0)
    docs = [
        tokenized_document(
            f"d{d}", [list(rng.integers(10, 200, rng.integers(1, 40))) for _ in range(7)], True
        )
        for d in range(6)
    ]
    for cross in (True, False):
        blocks = list(pack_sentences(docs, 32, CLS, SEP, cross_documents=cross))
        inner = np.concatenate(
            [np.delete(b.input_ids[1:-1], b.separators - 1) for b in blocks]
        )  # Tokens without [CLS], the final [SEP] and the separators.
        assert inner.tolist() == np.concatenate([d.token_ids for d in docs]).tolist()
        assert all(
            len(b.input_ids) <= 32 and len(b.word_starts) == len(b.input_ids) for b in blocks
        )
        crossing = sum(b.num_documents > 1 for b in blocks)
        assert crossing > 0 if cross else crossing == 0


def test_roberta_flags():
    options, _ = parse_args(
        ["--input_file=a", "--output_file=b", "--vocab_file=v", "--objective=roberta"]
    )
    assert (options.objective, options.packing, options.masking) == (
        "roberta",
        "full_sentences",
        "static",
    )
    assert not options.has_next_sentence and options.has_masked_lm
    options, _ = parse_args(
        [
            "--input_file=a",
            "--output_file=b",
            "--vocab_file=v",
            "--objective=roberta",
            "--masking=dynamic",
            "--dupe_factor=5",
        ]
    )
    assert options.num_passes == 1 and not options.has_masked_lm
    with pytest.raises(SystemExit):
        parse_args(["--input_file=a", "--output_file=b", "--vocab_file=v", "--packing=x"])


def _run(tmp, extra, beam_args=IN_PROCESS, corpus=None, max_seq=48):
    corpus = corpus or write_text(
        os.path.join(tmp, "corpus", "c.txt"), generate_corpus(10, sentences=(3, 12), seed=8)
    )
    os.makedirs(tmp, exist_ok=True)
    vocab = write_vocab(os.path.join(tmp, "vocab.txt"))
    prefix = os.path.join(tmp, "out", "pretrain")
    argv = [
        f"--input_file={corpus}",
        f"--output_file={prefix}",
        f"--vocab_file={vocab}",
        f"--max_seq_length={max_seq}",
        "--max_predictions_per_seq=8",
        "--documents_per_bucket=4",
        "--num_shards=2",
        *extra,
        *beam_args,
    ]
    return prefix, create_pretraining_data.run(argv)


def test_roberta_full_sentences_static_records(tmp_path):
    prefix, counters = _run(
        str(tmp_path), ["--objective=roberta", "--dupe_factor=2", "--max_ngram_size=3"]
    )
    serialized = read_records(prefix)
    assert len(serialized) == counters[metrics.INSTANCES] > 0
    spec = records.spec_from_record(serialized[0])
    assert spec == records.RecordSpec(48, 8, has_masked_lm=True, has_next_sentence=False)
    crossing = 0
    for record in serialized:
        r = records.parse_example(record)
        assert "next_sentence_labels" not in r
        length = int(r["input_mask"].sum())
        n = int(r["masked_lm_weights"].sum())
        original = r["input_ids"].copy()
        original[r["masked_lm_positions"][:n]] = r["masked_lm_ids"][:n]
        assert original[0] == V_CLS and original[length - 1] == V_SEP
        assert (r["segment_ids"] == 0).all()
        seps = set(np.flatnonzero(original[:length] == V_SEP).tolist())
        crossing += len(seps) > 1
        assert not seps & set(r["masked_lm_positions"][:n].tolist())
        assert n == num_to_predict(length, 0.15, 8)
    assert crossing == counters[metrics.INSTANCES_CROSSING_DOCUMENTS] > 0
    # full_sentences packs: all but a bucket's last block per pass are (nearly) full.
    lengths = [int(records.parse_example(r)["input_mask"].sum()) for r in serialized]
    assert np.mean(lengths) > 0.8 * 48
    summary = json.load(open(prefix + ".summary.json"))["summary"]
    assert summary["label_1_share"] is None


def test_roberta_doc_sentences_dynamic_records_feed_the_reader(tmp_path):
    prefix, counters = _run(
        str(tmp_path),
        ["--objective=roberta", "--packing=doc_sentences", "--masking=dynamic"],
    )
    serialized = read_records(prefix)
    assert len(serialized) == counters[metrics.INSTANCES] > 0
    assert counters[metrics.INSTANCES_CROSSING_DOCUMENTS] == 0
    assert counters[metrics.MASKED_TOKENS] == 0
    spec = records.spec_from_record(serialized[0])
    assert not spec.has_masked_lm and not spec.has_next_sentence
    for record in serialized:
        r = records.parse_example(record)
        assert set(r) == set(records.SEQUENCE_FEATURES)
        length = int(r["input_mask"].sum())
        assert int((r["input_ids"][:length] == V_SEP).sum()) == 1  # No document separator.
    # dupe_factor 10 (default) is one pass: the dynamic records are the unique blocks.
    assert len(set(serialized)) == len(serialized)
    batch = next(iter(records.make_dataset(prefix + "-*", spec, 4, shuffle=False, repeat=False)))
    assert batch["input_ids"].shape == (4, 48)


def test_bert_dynamic_masking_keeps_nsp(tmp_path):
    prefix, counters = _run(str(tmp_path), ["--masking=dynamic", "--dupe_factor=1"])
    serialized = read_records(prefix)
    assert len(serialized) == counters[metrics.INSTANCES] > 0
    r = records.parse_example(serialized[0])
    assert set(r) == {*records.SEQUENCE_FEATURES, records.NEXT_SENTENCE_LABELS}
    assert V_MASK not in r["input_ids"]


def test_roberta_bad_input_is_skipped_and_counted(tmp_path):
    corpus = tmp_path / "corpus"
    write_text(str(corpus / "good.txt"), generate_corpus(3, seed=3))
    write_text(str(corpus / "empty.txt"), b"")
    write_text(str(corpus / "bytes.txt"), b"w1 \xff\xfe w2\r\nw3 w4\r\n\r\n\x00\x01\x7f\n\n")
    write_text(str(corpus / "long.txt"), ("w5 " * 20_000 + "\nw6 w7\n").encode())  # 60 kB line.
    prefix, counters = _run(
        str(tmp_path), ["--objective=roberta", "--dupe_factor=1"], corpus=str(corpus / "*.txt")
    )
    assert counters[metrics.FILES_WITHOUT_DOCUMENTS] == 1
    assert counters[metrics.LINES_INVALID_UTF8] == 1
    assert counters[metrics.DOCUMENTS_SKIPPED_NO_TOKENS] == 1
    assert counters[metrics.SENTENCES_SPLIT] == 1  # The long line, cut into full blocks.
    serialized = read_records(prefix)
    assert len(serialized) == counters[metrics.INSTANCES]
    lengths = [int(records.parse_example(r)["input_mask"].sum()) for r in serialized]
    assert max(lengths) == 48 and sum(n == 48 for n in lengths) >= 20_000 // 46


@pytest.mark.slow
def test_roberta_full_sentences_same_records_in_process_and_with_two_workers(tmp_path):
    corpus = tmp_path / "corpus"
    write_text(str(corpus / "a.txt"), generate_corpus(8, sentences=(3, 9), seed=5))
    write_text(str(corpus / "b.txt"), generate_corpus(7, sentences=(3, 9), seed=6))
    extra = [
        "--objective=roberta",
        "--dupe_factor=2",
        "--do_whole_word_mask",
        "--max_ngram_size=2",
    ]
    a, counters_a = _run(str(tmp_path / "a"), extra, corpus=str(corpus / "*.txt"))
    b, counters_b = _run(
        str(tmp_path / "b"),
        extra,
        [
            "--runner=DirectRunner",
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=2",
        ],
        corpus=str(corpus / "*.txt"),
    )
    records_a = read_records(a)
    assert len(records_a) == counters_a[metrics.INSTANCES] > 0
    assert records_a == read_records(b)
    assert (
        counters_b[metrics.INSTANCES_CROSSING_DOCUMENTS]
        == (counters_a[metrics.INSTANCES_CROSSING_DOCUMENTS])
        > 0
    )
    assert counters_a[metrics.BUCKETS] > 1


def test_dynamic_roberta_records_are_masked_by_the_trainer(tmp_path):
    import tensorflow as tf

    from bert_keras.training.dynamic_masking import MaskingConfig, mask_batch

    prefix, _ = _run(str(tmp_path), ["--objective=roberta", "--masking=dynamic", "--noreport"])
    spec = records.spec_from_record(read_records(prefix)[0])
    batch = next(iter(records.make_dataset(prefix + "-*", spec, 8, shuffle=False, repeat=False)))
    config = MaskingConfig.from_vocab_file(str(tmp_path / "vocab.txt"), max_predictions_per_seq=8)
    masked = mask_batch(batch, config, tf.constant([1, 2]))
    inputs, labels = records.to_model_inputs(masked)
    weights = labels["masked_lm_weights"].numpy()
    positions = inputs["masked_lm_positions"].numpy()
    lengths = batch["input_mask"].numpy().sum(axis=1)
    assert (weights.sum(axis=1) == [num_to_predict(int(n), 0.15, 8) for n in lengths]).all()
    original = batch["input_ids"].numpy()
    chosen = original[np.arange(8)[:, None], positions][weights > 0]
    assert not {V_CLS, V_SEP} & set(chosen.tolist())  # Never [CLS] or a [SEP] (separators too).
    assert set(labels) == {"masked_lm_ids", "masked_lm_weights"}  # No NSP label.

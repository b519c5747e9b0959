"""pipeline.report: figures computed from the records equal the run's counters and a
direct recount; plots are PNGs; every record layout is read."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from bert_keras import records
from pipeline import create_pretraining_data, metrics, report
from tests.pipeline.pipeline_test_util import (
    generate_corpus,
    read_records,
    word_vocab,
    write_text,
    write_vocab,
)

VOCAB = word_vocab()
UNK, MASK = VOCAB.index("[UNK]"), VOCAB.index("[MASK]")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(tmp, extra):
    text = generate_corpus(12, sentences=(4, 12), seed=9)
    text = text.replace("w7 ", "zzz ")  # Out of vocabulary: [UNK].
    corpus = write_text(os.path.join(tmp, "corpus", "c.txt"), text)
    vocab = write_vocab(os.path.join(tmp, "vocab.txt"))
    prefix = os.path.join(tmp, "out", "pretrain")
    counters = create_pretraining_data.run(
        [
            f"--input_file={corpus}",
            f"--output_file={prefix}",
            f"--vocab_file={vocab}",
            "--max_seq_length=40",
            "--max_predictions_per_seq=6",
            "--dupe_factor=2",
            "--num_shards=2",
            *extra,
            "--runner=DirectRunner",
        ]
    )
    return prefix, counters


def _recount(serialized):
    lengths, unk, positions, labels = [], 0, [], []
    for record in serialized:
        r = records.parse_example(record)
        n = int(r.get("masked_lm_weights", np.zeros(0)).sum())
        ids = r["input_ids"].copy()
        if n:
            ids[r["masked_lm_positions"][:n]] = r["masked_lm_ids"][:n]
            positions.extend(r["masked_lm_positions"][:n].tolist())
        length = int(r["input_mask"].sum())
        lengths.append(length)
        unk += int((ids[:length] == UNK).sum())
        if "next_sentence_labels" in r:
            labels.append(int(r["next_sentence_labels"][0]))
    return np.array(lengths), unk, positions, labels


def test_report_written_by_the_run_matches_counters_and_a_recount(tmp_path):
    prefix, counters = _run(str(tmp_path), [])
    result = json.load(open(prefix + ".report.json"))
    serialized = read_records(prefix)
    lengths, unk, positions, labels = _recount(serialized)
    assert result["documents"] == counters[metrics.DOCUMENTS_READ] == 12
    assert result["instances"] == counters[metrics.INSTANCES] == len(serialized)
    assert result["tokens"] == counters[metrics.TOKENS] == lengths.sum()
    assert result["masked_tokens"] == counters[metrics.MASKED_TOKENS] == len(positions)
    assert result["masked_fraction"] == pytest.approx(len(positions) / lengths.sum())
    assert result["unk_share"] == pytest.approx(unk / lengths.sum()) and unk > 0
    shares = result["next_sentence_label_shares"]
    assert shares["1"] == pytest.approx(np.mean(labels))
    assert shares["0"] + shares["1"] == pytest.approx(1.0)
    assert result["histograms"]["sequence_length"] == np.bincount(lengths, minlength=41).tolist()
    assert result["histograms"]["masked_positions"] == np.bincount(positions, minlength=40).tolist()
    assert sum(result["masked_shown_as"].values()) == pytest.approx(1.0)
    assert result["masked_shown_as"]["mask"] > 0.6
    for name in ("sequence_length", "masked_positions"):
        with open(f"{prefix}.{name}.png", "rb") as f:
            assert f.read(8) == PNG_MAGIC


def test_report_cli_on_roberta_dynamic_records(tmp_path, capsys):
    prefix, counters = _run(
        str(tmp_path), ["--objective=roberta", "--masking=dynamic", "--noreport"]
    )
    assert not os.path.exists(prefix + ".report.json")
    out = tmp_path / "report"
    report.main(
        [
            f"--input_file={prefix}-*.tfrecord",
            f"--output_dir={out}",
            f"--vocab_file={tmp_path}/vocab.txt",
        ]
    )
    result = json.load(open(out / "report.json"))
    lengths, unk, _, _ = _recount(read_records(prefix))
    assert result["instances"] == counters[metrics.INSTANCES] == len(lengths)
    assert result["documents"] == 12  # From the run's summary, found beside the shards.
    assert result["masked_fraction"] is None and result["next_sentence_label_shares"] is None
    assert result["unk_share"] == pytest.approx(unk / lengths.sum())
    assert os.path.exists(out / "sequence_length.png")
    assert not os.path.exists(out / "masked_positions.png")
    assert "instances: " in capsys.readouterr().out


def test_report_cli_bad_glob_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="report: error: .*matches no file"):
        report.main([f"--input_file={tmp_path}/none-*.tfrecord"])

"""The whole demo at its smallest size, through the real command lines (issue: end to end)."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_demo_end_to_end_smallest(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bert_keras.demo",
            f"--output_dir={out}",
            "--corpus_max_bytes=120000",
            "--vocab_size=1500",
            "--dupe_factor=1",
            "--preset=tiny",
            "--pretrain_steps=20",
            "--pretrain_batch_size=16",
            "--finetune_epochs=1",
            "--finetune_seq_length=32",
            "--skip_random_baseline",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["instances"] > 0
    assert summary["pretraining"]["step"] == 20
    labels = set(summary["dev_pretrained"]["labels"])
    assert len(labels) == 4
    # The fresh process answered with one of the task's labels for every sentence.
    assert set(summary["predictions"].values()) <= labels
    assert len(summary["predictions"]) == 4
    assert (out / "pretrain" / "training_curve.png").stat().st_size > 1000
    # The dataset report's plots, beside the shards.
    assert (out / "records" / "pretrain.sequence_length.png").stat().st_size > 1000
    assert (out / "records" / "pretrain.masked_positions.png").stat().st_size > 1000
    assert (out / "export" / "stdlib_classifier" / "1" / "saved_model.pb").exists()
    assert "=== summary" in result.stdout

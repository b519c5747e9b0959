"""The SQuAD driver end to end on tiny synthetic files: train a tiny model for a few
steps, predict, write the official files, score; then predict again from the saved run."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from bert_keras.config import BertConfig
from bert_keras.squad.train import SquadOptions, run
from tests.bert_keras.squad.squad_test_util import VOCAB, qa, write_squad, write_vocab

pytestmark = pytest.mark.slow

CITIES, NAMES = ["paris", "rome", "london"], ["emile", "she", "he"]
CONFIG = BertConfig(
    vocab_size=len(VOCAB),
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=48,
)


def _paragraphs(n, seed, v2=False):
    """n passages about a bridge, each with a who and a when question (and, for v2, an
    unanswerable where question)."""
    rng = random.Random(seed)
    paragraphs = []
    for i in range(n):
        city, name, year = rng.choice(CITIES), rng.choice(NAMES), str(rng.randint(1800, 1999))
        filler = " ".join(rng.choice(["the", "river", "bridge", "near", "city"]) for _ in range(8))
        context = f"{filler}, the bridge of {city.title()} was built in {year} by {name}."
        questions = [
            qa(f"{i}w", "who built it?", [(name, context.rindex(name))]),
            qa(f"{i}y", "when was it built?", [(year, context.index(year))]),
        ]
        if v2:
            questions = [dict(q, is_impossible=False) for q in questions]
            questions.append(qa(f"{i}n", "where did she live?", [], True, [(city, 0)]))
        paragraphs.append((context, questions))
    return paragraphs


def _check_outputs(tmp_path, out, summary, v2):
    predictions = json.loads((out / "predictions.json").read_text("utf-8"))
    dev_data = json.loads((tmp_path / "dev.json").read_text("utf-8"))
    contexts = {q["id"]: p["context"] for p in dev_data["data"][0]["paragraphs"] for q in p["qas"]}
    assert set(predictions) == set(contexts)
    assert all(text in contexts[qid] for qid, text in predictions.items())
    assert (out / "nbest_predictions.json").exists()
    assert (out / "null_odds.json").exists() == v2
    metrics = summary["metrics"]
    assert metrics["total"] == len(contexts) and 0.0 <= metrics["f1"] <= 100.0
    assert ("NoAns_total" in metrics) == v2
    results = json.loads((out / "eval_results.json").read_text("utf-8"))
    assert results["metrics"] == pytest.approx(metrics)
    assert summary["train"]["windows"] > summary["train"]["examples"]  # Windowed.
    info = json.loads((out / "final" / "task_info.json").read_text("utf-8"))
    assert info["version_2_with_negative"] == v2 and info["doc_stride"] == 8
    assert os.path.exists(out / "final" / "bert_config.json")
    return predictions


def test_v1_through_finetune_cli(tmp_path):
    """`python -m bert_keras.finetune --task=squad_v1`'s main under MirroredStrategy on 2
    logical CPUs (a subprocess: the entry points' absl flags cannot share one process)."""
    config = tmp_path / "bert_config.json"
    CONFIG.to_json_file(str(config))
    args = [
        "--task=squad_v1",
        f"--train_file={write_squad(tmp_path / 'train.json', _paragraphs(60, 0))}",
        f"--predict_file={write_squad(tmp_path / 'dev.json', _paragraphs(20, 1))}",
        f"--vocab_file={write_vocab(tmp_path / 'vocab.txt')}",
        f"--bert_config_file={config}",
        f"--output_dir={tmp_path / 'out'}",
        "--max_seq_length=24",
        "--doc_stride=8",
        "--max_query_length=8",
        "--max_answer_length=4",
        "--n_best_size=5",
        "--train_batch_size=32",
        "--learning_rate=3e-3",
        "--num_train_epochs=8",
        "--strategy=mirrored",
    ]
    script = textwrap.dedent(
        """
        import sys
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from absl import app
        from bert_keras import finetune
        app.run(finetune.main, argv=["finetune"] + sys.argv[1:])
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"
    summary = json.loads((out / "eval_results.json").read_text("utf-8"))
    assert summary["num_replicas"] == 2
    _check_outputs(tmp_path, out, summary, v2=False)
    assert summary["train"]["steps"] == math.ceil(summary["train"]["windows"] * 8 / 32)
    # The answer is the word after "in" (when) or before the final "." (who): learnt in
    # ~60 steps (measured EM = F1 = 100 on the 40 dev questions; an untrained model ~0).
    assert summary["metrics"]["exact"] >= 80.0


def test_v2_train_predict_and_reload(tmp_path):
    train = write_squad(tmp_path / "train.json", _paragraphs(60, 0, v2=True))
    dev = write_squad(tmp_path / "dev.json", _paragraphs(20, 1, v2=True))
    config = tmp_path / "bert_config.json"
    CONFIG.to_json_file(str(config))
    common = dict(
        task="squad_v2",
        predict_file=dev,
        max_seq_length=24,  # Two or three windows per passage.
        doc_stride=8,
        max_query_length=8,
        max_answer_length=4,
        null_score_diff_threshold=0.0,
    )
    options = SquadOptions(
        output_dir=str(tmp_path / "out"),
        vocab_file=write_vocab(tmp_path / "vocab.txt"),
        train_file=train,
        bert_config_file=str(config),
        train_batch_size=32,
        eval_batch_size=64,
        learning_rate=3e-3,
        num_train_epochs=20,
        seed=3,
        **common,
    )
    summary = run(options)
    predictions = _check_outputs(tmp_path, tmp_path / "out", summary, v2=True)
    null_odds = json.loads((tmp_path / "out" / "null_odds.json").read_text("utf-8"))
    for qid, text in predictions.items():  # The threshold decides "" from the odds.
        assert (text == "") == (null_odds[qid] > 0.0)
    # Learnt in ~225 steps (measured: EM 100 overall and on NoAns; 33.3 answers "" always).
    assert summary["metrics"]["exact"] >= 80.0 and summary["metrics"]["NoAns_exact"] >= 80.0

    # Prediction only, from the saved run: the same predictions.
    final = tmp_path / "out" / "final"
    again = SquadOptions(
        output_dir=str(tmp_path / "again"),
        vocab_file=str(final / "vocab.txt"),
        init_checkpoint=str(final),
        **common,
    )
    rerun = run(again)
    assert json.loads((tmp_path / "again" / "predictions.json").read_text("utf-8")) == predictions
    assert rerun["metrics"] == pytest.approx(summary["metrics"])

    # Training again with the same --seed ends with the same weights, bit for bit (fit's
    # extra data iterator once made the batch order depend on thread timing).
    random.random(), np.random.rand(), tf.random.uniform(())  # Global randomness moved on.
    run(dataclasses.replace(options, output_dir=str(tmp_path / "same_seed"), predict_file=None))
    first = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(final)))
    second_dir = tmp_path / "same_seed" / "final"
    second = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(second_dir)))
    names = [n for n, _ in tf.train.list_variables(str(second_dir)) if n.startswith("model/")]
    assert names
    for name in names:
        np.testing.assert_array_equal(first.get_tensor(name), second.get_tensor(name), name)


def test_prediction_needs_a_span_head(tmp_path):
    options = SquadOptions(
        task="squad_v1",
        output_dir=str(tmp_path / "out"),
        vocab_file=write_vocab(tmp_path / "vocab.txt"),
        predict_file=write_squad(tmp_path / "dev.json", _paragraphs(1, 0)),
        max_seq_length=24,
        max_query_length=8,
    )
    with pytest.raises(ValueError, match="needs --init_checkpoint"):
        run(options)
    with pytest.raises(ValueError, match="SQuAD tasks are"):
        run(SquadOptions(task="squad", output_dir="x", vocab_file="v", predict_file="p"))

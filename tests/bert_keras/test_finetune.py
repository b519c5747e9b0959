"""Fine-tuning end to end on tiny synthetic tasks in GLUE / CoNLL layouts, from random init.

The tasks are made so that a 1-layer, 32-wide encoder learns them in a few hundred steps:
the label is carried by keywords at random positions among filler words.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_keras import checkpoints
from bert_keras.config import BertConfig
from bert_keras.models import BertClassifier, BertEncoder
from bert_keras.preprocessing import BertInputPacker
from bert_keras.tasks import finetuning
from bert_keras.tasks.data import Example
from bert_keras.tasks.finetuning import FinetuneOptions, run
from bert_keras.tokenization import RESERVED_TOKENS, BertWordPieceTokenizer

FILLER = "the a movie film plot actor was is and it this very quite story".split()
POSITIVE, NEGATIVE = ["good", "great", "fine"], ["bad", "awful", "poor"]
NAMES, SURNAMES, CITIES = ["john", "mary", "ann"], ["smith", "jones"], ["paris", "rome"]
VOCAB = list(RESERVED_TOKENS) + FILLER + POSITIVE + NEGATIVE + NAMES + SURNAMES + CITIES + ["##s"]
CONFIG = BertConfig(
    vocab_size=len(VOCAB),
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=32,
)


@pytest.fixture
def model_files(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    config = tmp_path / "bert_config.json"
    CONFIG.to_json_file(str(config))
    return str(vocab), str(config)


def _sentiment_sentence(rng: random.Random) -> tuple[str, int]:
    label = rng.randint(0, 1)
    words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))]
    words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if label else NEGATIVE))
    return " ".join(words), label


def write_sst2(directory, n_train=400, n_dev=100, n_test=20, seed=0):
    rng = random.Random(seed)
    os.makedirs(directory, exist_ok=True)
    for name, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
        rows = [_sentiment_sentence(rng) for _ in range(n)]
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows))
    with open(os.path.join(directory, "test.tsv"), "w", encoding="utf-8") as f:
        f.write("index\tsentence\n")
        f.write("".join(f"{i}\t{_sentiment_sentence(rng)[0]}\n" for i in range(n_test)))


def _options(data_dir, model_files, output_dir, **overrides) -> FinetuneOptions:
    vocab, config = model_files
    values = dict(
        task="sst-2",
        data_dir=str(data_dir),
        vocab_file=vocab,
        bert_config_file=config,
        output_dir=str(output_dir),
        max_seq_length=16,
        train_batch_size=16,
        eval_batch_size=50,
        learning_rate=1e-2,
        num_train_epochs=4,
        seed=1,
    )
    values.update(overrides)
    return FinetuneOptions(**values)


def _run(options):
    keras.backend.clear_session()
    return run(options)


@pytest.mark.slow
def test_classifier_learns_sst2_layout_from_random_init(tmp_path, model_files):
    write_sst2(tmp_path / "data", n_train=320)
    out = tmp_path / "out"
    summary = _run(_options(tmp_path / "data", model_files, out))
    # Chance is ~0.5; a keyword task learned should be near perfect.
    assert summary["dev"]["dev"]["accuracy"] >= 0.9, summary
    history = [json.loads(line) for line in (out / "eval_history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [20, 40, 60, 80]
    best_step = max(history, key=lambda h: h["dev"]["glue_score"])["step"]
    assert summary["best_checkpoint"].endswith(f"ckpt-{best_step}")
    # The best checkpoint: our format, config + vocab + task info beside it.
    best = out / "best"
    info = json.loads((best / "task_info.json").read_text())
    assert info["labels"] == ["0", "1"] and info["model_class"] == "BertClassifier"
    assert info["best_dev"] == summary["dev"]
    assert (best / "vocab.txt").read_text().split("\n")[:5] == list(RESERVED_TOKENS)
    assert checkpoints.detect_format(str(best)) == "ours"
    encoder = BertEncoder(**vars(checkpoints.config_from_checkpoint(str(best))))
    checkpoints.restore_encoder(encoder, str(best))
    reader = tf.train.load_checkpoint(summary["best_checkpoint"])
    names = [n for n, _ in tf.train.list_variables(summary["best_checkpoint"])]
    assert any(n.startswith("model/output_dense") for n in names), names[:10]
    embedding = [n for n in names if n.startswith("encoder/token_embedding/")][0]
    assert reader.get_tensor(embedding).shape[0] == len(VOCAB)
    # GLUE submission file: one prediction per test row, predictions are training labels.
    lines = (out / "predictions" / "SST-2.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 21
    assert {line.split("\t")[1] for line in lines[1:]} <= {"0", "1"}
    # The predictions match the keywords.
    tests = (tmp_path / "data" / "test.tsv").read_text().splitlines()[1:]
    want = [str(int(any(w in POSITIVE for w in t.split("\t")[1].split()))) for t in tests]
    got = [line.split("\t")[1] for line in lines[1:]]
    assert np.mean(np.array(want) == np.array(got)) >= 0.9


def _checkpoint_values(prefix: str) -> dict[str, np.ndarray]:
    """Every variable of the encoder, the head and the optimizer in a checkpoint."""
    reader = tf.train.load_checkpoint(prefix)
    names = [n for n, _ in tf.train.list_variables(prefix) if n.startswith(("encoder/", "model/"))]
    return {n: reader.get_tensor(n) for n in names}


def _use_global_randomness():
    """What other code in the process may do: draw from every global generator, build
    layers (auto-named, seeded from Python's random), reseed TF."""
    random.random()
    np.random.rand(3)
    tf.random.uniform([3])
    keras.random.uniform([3])
    keras.layers.Dropout(0.5)(np.ones((2, 3), np.float32), training=True)
    keras.layers.Dense(4).build((None, 3))
    tf.random.set_seed(99)


@pytest.mark.slow
def test_seed_makes_runs_reproducible(tmp_path, model_files, monkeypatch):
    """Same --seed: bit-identical weights, optimizer state and dev metrics, in one process
    whatever ran before it, and in a fresh process; another seed: other weights.

    Between the two in-process runs: global randomness used, no clear_session (other
    layer names), and an iterator opened on the training batches and read over several
    epochs before `fit` (what `fit`'s own peek iterator did with the old seeded
    `shuffle(reshuffle_each_iteration=True)`, whose order then depended on it).
    """
    write_sst2(tmp_path / "data", n_train=32, n_dev=16, n_test=4)
    vocab, config = model_files

    def options(name, seed):
        return _options(
            tmp_path / "data", model_files, tmp_path / name, seed=seed, num_train_epochs=2
        )

    def results(name):
        summary = json.loads((tmp_path / name / "eval_results.json").read_text())
        history = (tmp_path / name / "eval_history.jsonl").read_text()
        return summary["dev"], history, _checkpoint_values(summary["best_checkpoint"])

    _run(options("a", 3))
    _use_global_randomness()
    original_fit = keras.Model.fit

    def fit_after_reading_ahead(self, x, *args, **kwargs):
        iterator = iter(x)
        for _ in range(10):  # 160 rows: five passes over the 32 training examples.
            next(iterator)
        del iterator
        return original_fit(self, x, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit_after_reading_ahead)
    run(options("b", 3))  # No clear_session: the layers get other auto-generated names.
    monkeypatch.undo()
    _run(options("c", 4))
    args = [f"--{k}={v}" for k, v in dataclasses.asdict(options("d", 3)).items() if v is not None]
    proc = subprocess.run(
        [sys.executable, "-m", "bert_keras.finetune", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    dev_a, history_a, weights_a = results("a")
    assert len(history_a.splitlines()) == 2 and len(weights_a) > 20
    for name in ("b", "d"):
        dev, history, weights = results(name)
        assert (dev, history) == (dev_a, history_a), name
        assert weights.keys() == weights_a.keys(), name
        for key, value in weights.items():
            np.testing.assert_array_equal(value, weights_a[key], err_msg=f"{name}: {key}")
    _, history_c, weights_c = results("c")
    assert history_c != history_a
    assert not np.array_equal(
        weights_c["model/output_dense/_kernel/.ATTRIBUTES/VARIABLE_VALUE"],
        weights_a["model/output_dense/_kernel/.ATTRIBUTES/VARIABLE_VALUE"],
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "mixed_precision, compute_dtype", [("fp16", "float16"), ("bf16", "bfloat16")]
)
def test_mixed_precision_run_restores_into_float32(
    tmp_path, model_files, monkeypatch, mixed_precision, compute_dtype
):
    write_sst2(tmp_path / "data", n_train=32, n_dev=16, n_test=4)
    built = []
    build_model = finetuning.build_model

    def spy(*args, **kwargs):
        built.append(build_model(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(finetuning, "build_model", spy)
    out = tmp_path / "out"
    options = _options(
        tmp_path / "data", model_files, out, num_train_epochs=2, mixed_precision=mixed_precision
    )
    summary = _run(options)
    ((_, model),) = built
    assert summary["dev"]["dev"]["accuracy"] == summary["dev"]["dev"]["accuracy"]  # Not NaN.
    for line in (out / "eval_history.jsonl").read_text().splitlines():
        assert np.isfinite(json.loads(line)["train_loss"]), line
    # Mixed compute, float32 variables, logits and loss.
    assert model.dtype_policy.name == f"mixed_{compute_dtype}"
    assert model.compute_dtype == compute_dtype and model.variable_dtype == "float32"
    tokenizer = BertWordPieceTokenizer(model_files[0])
    packer = BertInputPacker.from_tokenizer(tokenizer, 16)
    inputs = finetuning.TextFeatures(tokenizer, packer, is_pair=False).encode(
        [Example("0", "the film was good", None, "1"), Example("1", "bad plot", None, "0")]
    )
    logits = model(inputs, training=False)  # (2, 2)
    assert logits.dtype == tf.float32
    loss = model.compute_loss(x=inputs, y=np.array([1, 0]), y_pred=logits, training=False)
    assert loss.dtype == tf.float32 and np.isfinite(float(loss))
    # float16 needs loss scaling; bfloat16 has float32's range.
    is_scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert is_scaled == (mixed_precision == "fp16")
    # The global policy is back to float32: a model built now computes in float32, and
    # the best checkpoint restores into it with the same weights.
    assert keras.config.dtype_policy().name == "float32"
    encoder = BertEncoder(**vars(checkpoints.config_from_checkpoint(str(out / "best"))))
    restored = BertClassifier(encoder, num_classes=2)
    checkpoints.restore_finetuned_model(restored, str(out / "best"), "--checkpoint", "")
    assert restored.compute_dtype == "float32"
    assert all(w.dtype == "float32" for w in restored.weights)
    for a, b in zip(restored.weights, model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    restored_logits = restored(inputs, training=False)
    assert restored_logits.dtype == tf.float32
    np.testing.assert_allclose(restored_logits, logits, atol=0.05)


def _ner_sentence(rng: random.Random) -> list[tuple[str, str]]:
    words = [(rng.choice(FILLER), "O") for _ in range(rng.randint(2, 6))]
    for _ in range(rng.randint(1, 2)):
        at = rng.randint(0, len(words))
        if rng.random() < 0.5:
            entity = [(rng.choice(NAMES), "B-PER")]
            if rng.random() < 0.5:
                entity.append((rng.choice(SURNAMES), "I-PER"))
        else:
            entity = [(rng.choice(CITIES).capitalize(), "B-LOC")]
        words[at:at] = entity
    return words


@pytest.mark.slow
def test_token_classifier_learns_conll_layout(tmp_path, model_files):
    rng = random.Random(5)
    data = tmp_path / "conll"
    data.mkdir()
    for name, n in (("train.txt", 300), ("dev.txt", 60), ("test.txt", 10)):
        with open(data / name, "w", encoding="utf-8") as f:
            f.write("-DOCSTART- -X- -X- O\n\n")
            for _ in range(n):
                for word, tag in _ner_sentence(rng):
                    f.write(f"{word} NN O {tag}\n")
                f.write("\n")
    out = tmp_path / "out"
    summary = _run(_options(data, model_files, out, task="conll", num_train_epochs=3))
    dev = summary["dev"]["dev"]
    assert dev["f1"] >= 0.9, dev
    assert summary["labels"] == ["B-LOC", "B-PER", "I-PER", "O"]
    info = json.loads((out / "best" / "task_info.json").read_text())
    assert info["model_class"] == "BertTokenClassifier"
    predicted = (out / "predictions" / "test_predictions.conll").read_text().split("\n\n")
    assert len([s for s in predicted if s.strip()]) == 10


@pytest.mark.slow
def test_regression_on_sentence_pairs_sts_b_layout(tmp_path, model_files):
    rng = random.Random(9)
    data = tmp_path / "stsb"
    data.mkdir()
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"

    def pair():
        a, ya = _sentiment_sentence(rng)
        b, yb = _sentiment_sentence(rng)
        return a, b, 2.5 * (ya + yb)  # 0, 2.5 or 5: how many of the two are positive.

    for name, n in (("train.tsv", 400), ("dev.tsv", 100), ("test.tsv", 5)):
        with open(data / name, "w", encoding="utf-8") as f:
            f.write(header + ("\tscore\n" if name != "test.tsv" else "\n"))
            for i in range(n):
                a, b, score = pair()
                row = [str(i), "main", "x", "2012", str(i), "none", "none", a, b]
                f.write("\t".join(row + ([f"{score:.3f}"] if name != "test.tsv" else [])) + "\n")
    summary = _run(_options(data, model_files, tmp_path / "out", task="sts-b", max_seq_length=24))
    dev = summary["dev"]["dev"]
    # Chance is 0; the score needs both sentences of the pair.
    assert dev["pearson"] >= 0.6 and dev["spearman"] >= 0.6, dev
    lines = (tmp_path / "out" / "predictions" / "STS-B.tsv").read_text().splitlines()
    assert len(lines) == 6 and all(
        float(x.split("\t")[1]) == float(x.split("\t")[1]) for x in lines[1:]
    )


@pytest.mark.slow
def test_cli_mirrored_over_two_cpus(tmp_path, model_files):
    """`python -m bert_keras.finetune`'s main under MirroredStrategy on 2 logical CPUs."""
    write_sst2(tmp_path / "data", n_train=96, n_dev=32, n_test=4)
    vocab, config = model_files
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
    out = tmp_path / "out"
    args = [
        "--task=SST-2",
        f"--data_dir={tmp_path / 'data'}",
        f"--vocab_file={vocab}",
        f"--bert_config_file={config}",
        f"--output_dir={out}",
        "--max_seq_length=16",
        "--train_batch_size=16",
        "--learning_rate=1e-2",
        "--num_train_epochs=2",
        "--strategy=mirrored",
        "--eval_every_steps=4",
    ]
    proc = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "eval_results.json").read_text())
    assert summary["num_replicas"] == 2
    assert summary["num_train_steps"] == 12  # 2 epochs of 6 steps, evaluated every 4.
    history = (out / "eval_history.jsonl").read_text().splitlines()
    assert [json.loads(h)["step"] for h in history] == [4, 8, 12]
    assert (out / "predictions" / "SST-2.tsv").exists()


def test_cli_bad_input_is_a_clear_error(tmp_path, model_files):
    write_sst2(tmp_path / "data", n_train=8, n_dev=4, n_test=2)
    with open(tmp_path / "data" / "dev.tsv", "a", encoding="utf-8") as f:
        f.write("a sentence\t7\n")
    vocab, config = model_files
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bert_keras.finetune",
            "--task=sst-2",
            f"--data_dir={tmp_path / 'data'}",
            f"--vocab_file={vocab}",
            f"--bert_config_file={config}",
            f"--output_dir={tmp_path / 'out'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert f"{tmp_path / 'data' / 'dev.tsv'}:6: label '7' is not in the training labels" in (
        proc.stderr
    )


def test_tokenization_matches_the_pipeline_tokenizer(tmp_path, model_files):
    """Fine-tuning packs text with the same tokenizer the pipeline uses (same ids)."""
    tokenizer = BertWordPieceTokenizer(model_files[0])
    features = finetuning.TextFeatures(
        tokenizer, BertInputPacker.from_tokenizer(tokenizer, 12), True
    )
    examples = [Example("1", "The movie was GOOD", "Johns plot")]
    batch = features.encode(examples)
    a, b = tokenizer.encode_batch(["The movie was GOOD", "Johns plot"])
    want = [tokenizer.cls_id, *a, tokenizer.sep_id, *b, tokenizer.sep_id]
    assert batch["input_word_ids"][0, : len(want)].tolist() == want
    assert tokenizer.ids_to_tokens(b) == ["john", "##s", "plot"]

"""`python -m bert_keras.export`: from the checkpoints fine-tuning and pretraining write to
SavedModels in TF Serving's layout."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from bert_keras.checkpoints import save_checkpoint
from bert_keras.models import BertClassifier, BertPretrainer
from bert_keras.serving import exporter
from tests.bert_keras.serving.serving_test_util import (
    MAX_SEQ_LENGTH,
    VOCAB,
    make_preprocessor,
    tiny_encoder,
    write_vocab,
)

LABELS = ["contradiction", "entailment", "neutral"]


def _write_finetune_dir(directory, model, task_info):
    """What bert_keras.finetune writes to output_dir/best/."""
    os.makedirs(directory, exist_ok=True)
    write_vocab(os.path.join(directory, "vocab.txt"))
    with open(os.path.join(directory, "task_info.json"), "w") as f:
        json.dump(task_info, f)
    return save_checkpoint(model.encoder, str(directory), model=model)


def _task_info(**overrides):
    info = {
        "task": "mnli",
        "kind": "classification",
        "labels": LABELS,
        "num_classes": 3,
        "is_pair": True,
        "max_seq_length": MAX_SEQ_LENGTH,
        "do_lower_case": True,
        "vocab_file": "vocab.txt",
        "model_class": "BertClassifier",
    }
    info.update(overrides)
    return info


def test_options_come_from_the_task_info_unless_given(tmp_path):
    with open(tmp_path / "task_info.json", "w") as f:
        json.dump(_task_info(), f)
    write_vocab(tmp_path / "vocab.txt")
    resolved = exporter.resolve_options(
        str(tmp_path / "ckpt-3"), exporter.ExportOptions(max_seq_length=64)
    )
    assert resolved.labels == LABELS and resolved.num_classes == 3
    assert resolved.num_segments == 2 and resolved.do_lower_case is True
    assert resolved.max_seq_length == 64  # The flag wins.
    assert resolved.vocab_file == str(tmp_path / "vocab.txt")


def test_defaults_without_task_info(tmp_path):
    resolved = exporter.resolve_options(
        None, exporter.ExportOptions(vocab_file=write_vocab(tmp_path / "v.txt"))
    )
    assert (resolved.num_segments, resolved.max_seq_length, resolved.do_lower_case) == (
        1,
        128,
        True,
    )


def test_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="--vocab_file"):
        exporter.resolve_options(str(tmp_path / "ckpt-1"), exporter.ExportOptions())
    (tmp_path / "task_info.json").write_text('{"labels": [1,')
    with pytest.raises(ValueError, match="task_info.json:1: not valid JSON"):
        exporter.resolve_options(str(tmp_path / "ckpt-1"), exporter.ExportOptions())
    options = exporter.ExportOptions(vocab_file=write_vocab(tmp_path / "v.txt"))
    with pytest.raises(ValueError, match="--kind='regressor'"):
        exporter.export("regressor", str(tmp_path / "out"), options=options)
    with pytest.raises(ValueError, match="needs --checkpoint"):
        exporter.export("encoder", str(tmp_path / "out"), options=options)


def test_classifier_needs_its_labels_and_kind(tmp_path):
    model = BertClassifier(tiny_encoder(), num_classes=3)
    best = tmp_path / "best"
    prefix = _write_finetune_dir(best, model, _task_info(labels=[], num_classes=3))
    with pytest.raises(ValueError, match="--labels=a,b"):
        exporter.export("classifier", str(tmp_path / "out"), checkpoint=prefix)
    (best / "task_info.json").write_text(json.dumps(_task_info(model_class="BertTokenClassifier")))
    with pytest.raises(ValueError, match="holds a BertTokenClassifier"):
        exporter.export("classifier", str(tmp_path / "out"), checkpoint=prefix)
    (best / "task_info.json").write_text(json.dumps(_task_info(max_seq_length=65)))
    with pytest.raises(ValueError, match="max_position_embeddings=64"):
        exporter.export("classifier", str(tmp_path / "out"), checkpoint=prefix)
    # Nothing was published by the failed exports.
    assert not os.path.exists(tmp_path / "out" / "bert_classifier" / "1")


def test_regression_checkpoint_builds_a_scoring_module(tmp_path):
    model = BertClassifier(tiny_encoder(), num_classes=1)
    info = _task_info(task="stsb", kind="regression", labels=[], num_classes=1)
    prefix = _write_finetune_dir(tmp_path / "best", model, info)
    options = exporter.resolve_options(prefix, exporter.ExportOptions())
    module = exporter.build_serving_module("classifier", prefix, options)
    assert module.is_regression and module.num_segments == 2
    np.testing.assert_allclose(
        module.classifier.output_dense.kernel.numpy(), model.output_dense.kernel.numpy()
    )


@pytest.mark.slow
def test_cli_exports_a_finetuned_classifier(tmp_path):
    model = BertClassifier(tiny_encoder(seed=5), num_classes=3)
    best = tmp_path / "finetune" / "best"
    _write_finetune_dir(best, model, _task_info())
    export_dir = tmp_path / "serving"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bert_keras.export",
            "--kind=classifier",
            f"--checkpoint={best}",
            f"--export_dir={export_dir}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    published = export_dir / "bert_classifier" / "1"
    assert completed.stdout.strip().endswith(str(published))
    assert sorted(os.listdir(export_dir / "bert_classifier")) == ["1"]

    served = tf.saved_model.load(str(published)).signatures["serving_default"]
    text_a, text_b = ["the movie was great", ""], ["it was not", "hello world"]
    outputs = served(text_a=tf.constant(text_a), text_b=tf.constant(text_b))
    inputs = make_preprocessor()([tf.constant(text_a), tf.constant(text_b)])
    expected = tf.nn.softmax(model(inputs, training=False)).numpy()
    np.testing.assert_allclose(outputs["probabilities"], expected, rtol=1e-5, atol=1e-6)
    assert [label.decode() for label in outputs["labels"].numpy()] == [
        LABELS[i] for i in expected.argmax(-1)
    ]


@pytest.mark.slow
def test_pretraining_checkpoint_to_fill_mask_and_encoder(tmp_path):
    pretrainer = BertPretrainer(tiny_encoder(seed=6))
    prefix = save_checkpoint(pretrainer.encoder, str(tmp_path / "pretrain"), pretrainer=pretrainer)
    options = exporter.ExportOptions(
        vocab_file=write_vocab(tmp_path / "vocab.txt"), max_seq_length=16, top_k=2
    )
    export_dir = str(tmp_path / "serving")
    fill_mask = exporter.export("pretrainer", export_dir, checkpoint=prefix, options=options)
    assert fill_mask == os.path.join(export_dir, "bert_pretrainer", "1")
    options.include_preprocessor = False
    encoder = exporter.export("encoder", export_dir, checkpoint=prefix, options=options, version=7)
    assert encoder == os.path.join(export_dir, "bert_encoder", "7")

    # The Keras reference: "[MASK]" put in place of the word "x" (id for id what the
    # SavedModel builds from the literal "[MASK]").
    inputs = make_preprocessor(max_seq_length=16)(tf.constant(["the x was fun"]))
    word_ids = inputs["input_word_ids"].numpy()
    assert list(word_ids[0, :3]) == [VOCAB.index("[CLS]"), VOCAB.index("the"), VOCAB.index("x")]
    answer = tf.saved_model.load(fill_mask).signatures["serving_default"](
        text=tf.constant(["the [MASK] was fun"])
    )
    assert answer["mask_positions"].numpy().tolist() == [[2]]
    word_ids[0, 2] = VOCAB.index("[MASK]")
    keras_inputs = dict(inputs, input_word_ids=tf.constant(word_ids))
    keras_inputs["masked_lm_positions"] = tf.constant([[2]])
    logits = pretrainer(keras_inputs, training=False)["mlm_logits"][0, 0]
    np.testing.assert_array_equal(answer["top_k_ids"][0, 0], np.argsort(-logits.numpy())[:2])
    np.testing.assert_allclose(
        answer["top_k_scores"][0, 0], np.sort(tf.nn.softmax(logits).numpy())[::-1][:2], rtol=1e-5
    )

    served = tf.saved_model.load(encoder)
    assert sorted(served.signatures) == ["from_examples", "from_tokens", "serving_default"]
    tokens = {name: keras_inputs[name] for name in inputs}
    expected = pretrainer.encoder(tokens, training=False)["pooled_output"]
    got = served.signatures["serving_default"](**tokens)["pooled_output"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)

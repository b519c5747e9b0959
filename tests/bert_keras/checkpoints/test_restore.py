import os

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from bert_keras.checkpoints import (
    config_from_checkpoint,
    detect_format,
    restore_encoder,
    restore_pretrainer,
    save_checkpoint,
)
from bert_keras.models import BertEncoder, BertPretrainer
from tests.bert_keras.checkpoints.reference import (
    numpy_forward,
    random_google_weights,
    tiny_checkpoint_config,
    to_hugging_face,
    write_google_checkpoint,
    write_hugging_face,
)
from tests.bert_keras.models.model_test_utils import pretraining_batch

# Two rows with padding (lengths 13 and 5 of 20) and one full row.
INPUTS, _ = pretraining_batch(batch=3, seq=20, predictions=4, lengths=[13, 20, 5], seed=7)
ENCODER_INPUTS = {k: v for k, v in INPUTS.items() if k != "masked_lm_positions"}
REAL = INPUTS["input_mask"].astype(bool)
ATOL = 2e-5  # float32 vs the float64 reference, activations of order 1.


def build_pretrainer(config):
    return BertPretrainer(BertEncoder(**config.to_dict()))


def assert_matches_reference(outputs, expected, heads=True):
    np.testing.assert_allclose(
        np.asarray(outputs["sequence_output"])[REAL], expected["sequence_output"][REAL], atol=ATOL
    )
    np.testing.assert_allclose(outputs["pooled_output"], expected["pooled_output"], atol=ATOL)
    if heads:
        np.testing.assert_allclose(outputs["mlm_logits"], expected["mlm_logits"], atol=ATOL)
        np.testing.assert_allclose(outputs["nsp_logits"], expected["nsp_logits"], atol=ATOL)


def pretrainer_outputs(pretrainer):
    outputs = dict(pretrainer.encoder(ENCODER_INPUTS, training=False))
    outputs.update(pretrainer(INPUTS, training=False))
    return outputs


@pytest.mark.parametrize("hidden_act", ["gelu", "gelu_new"])
def test_google_tf1_checkpoint_matches_numpy_reference(tmp_path, hidden_act):
    config = tiny_checkpoint_config(hidden_act=hidden_act)
    weights = random_google_weights(config)
    prefix = write_google_checkpoint(str(tmp_path / "uncased_L-2_H-32"), weights, config)
    assert detect_format(prefix) == "google"
    assert detect_format(os.path.dirname(prefix)) == "google"
    assert config_from_checkpoint(prefix) == config
    pretrainer = build_pretrainer(config_from_checkpoint(prefix))
    assert restore_pretrainer(pretrainer, os.path.dirname(prefix)) == "google"
    assert_matches_reference(pretrainer_outputs(pretrainer), numpy_forward(weights, config, INPUTS))


@pytest.mark.parametrize(
    "bert_prefix,heads,legacy_layer_norm",
    [(True, True, False), (False, False, False), (True, False, True), (False, True, True)],
)
def test_hugging_face_import_matches_numpy_reference(
    tmp_path, bert_prefix, heads, legacy_layer_norm
):
    config = tiny_checkpoint_config()
    weights = random_google_weights(config, seed=1, heads=heads)
    write_hugging_face(
        str(tmp_path), to_hugging_face(weights, bert_prefix, legacy_layer_norm), config
    )
    assert detect_format(str(tmp_path)) == "huggingface"
    assert config_from_checkpoint(str(tmp_path)) == config
    pretrainer = build_pretrainer(config)
    initial_head = np.asarray(pretrainer.mlm_head._bias).copy()
    assert restore_pretrainer(pretrainer, str(tmp_path)) == "huggingface"
    assert_matches_reference(
        pretrainer_outputs(pretrainer), numpy_forward(weights, config, INPUTS), heads=heads
    )
    if not heads:
        np.testing.assert_array_equal(pretrainer.mlm_head._bias, initial_head)
    encoder = BertEncoder(**config.to_dict(), trim_padding=False)
    restore_encoder(encoder, str(tmp_path))
    np.testing.assert_allclose(
        encoder(ENCODER_INPUTS)["pooled_output"],
        pretrainer_outputs(pretrainer)["pooled_output"],
        atol=1e-6,
    )


def test_parity_with_keras_hub_bert_backbone(tmp_path):
    # keras-hub's BertBackbone uses the tanh GELU whatever the config says; so do we here.
    config = tiny_checkpoint_config(hidden_act="gelu_new")
    weights = random_google_weights(config, seed=2, heads=False)
    write_hugging_face(str(tmp_path), to_hugging_face(weights, True, False), config)
    backbone = keras_hub.models.BertBackbone.from_preset(str(tmp_path))  # keras-hub's importer.
    theirs = backbone(
        {
            "token_ids": ENCODER_INPUTS["input_word_ids"],
            "segment_ids": ENCODER_INPUTS["input_type_ids"],
            "padding_mask": ENCODER_INPUTS["input_mask"],
        }
    )
    encoder = BertEncoder(**config.to_dict())
    restore_encoder(encoder, str(tmp_path))
    ours = encoder(ENCODER_INPUTS)
    np.testing.assert_allclose(
        np.asarray(ours["sequence_output"])[REAL],
        np.asarray(theirs["sequence_output"])[REAL],
        atol=1e-5,
    )
    np.testing.assert_allclose(ours["pooled_output"], theirs["pooled_output"], atol=1e-5)


def test_our_format_round_trip(tmp_path):
    config = tiny_checkpoint_config()
    source = build_pretrainer(config)
    optimizer = keras.optimizers.Adam()
    prefix = save_checkpoint(source.encoder, str(tmp_path / "ours"), pretrainer=source)
    assert detect_format(prefix) == "ours" and detect_format(str(tmp_path / "ours")) == "ours"
    assert config_from_checkpoint(prefix) == config
    # A different trimming setting changes the graph, not the checkpoint names.
    target = BertPretrainer(BertEncoder(**config.to_dict(), trim_padding=False))
    assert restore_pretrainer(target, str(tmp_path / "ours")) == "ours"
    for want, got in zip(source.get_weights(), target.get_weights(), strict=True):
        np.testing.assert_array_equal(want, got)
    # The encoder alone, from a checkpoint holding only a pretrainer (+ optimizer).
    only = str(tmp_path / "pretrainer_only" / "ckpt")
    tf.train.Checkpoint(pretrainer=source, optimizer=optimizer).write(only)
    encoder = BertEncoder(**config.to_dict())
    restore_encoder(encoder, only)
    for want, got in zip(source.encoder.get_weights(), encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(want, got)


def test_errors_are_clear(tmp_path):
    config = tiny_checkpoint_config()
    weights = random_google_weights(config)
    prefix = write_google_checkpoint(str(tmp_path / "google"), weights, config)
    wider = BertEncoder(**tiny_checkpoint_config(hidden_size=64).to_dict())
    with pytest.raises(ValueError, match=r"hidden_size: model 64 vs checkpoint 32"):
        restore_encoder(wider, prefix)
    os.remove(os.path.join(tmp_path, "google", "bert_config.json"))  # Shapes checked per tensor.
    with pytest.raises(ValueError, match=r"bert/embeddings/word_embeddings has shape \(64, 32\)"):
        restore_encoder(wider, prefix)
    ours = save_checkpoint(BertEncoder(**config.to_dict()), str(tmp_path / "ours"))
    with pytest.raises(ValueError, match=r"hidden_size: model 64 vs checkpoint 32"):
        restore_encoder(wider, ours)
    with pytest.raises(ValueError, match="norm_first=True"):
        restore_encoder(BertEncoder(**tiny_checkpoint_config(norm_first=True).to_dict()), prefix)
    with pytest.raises(ValueError, match="PyTorch pickles are not read"):
        restore_encoder(wider, str(tmp_path / "pytorch_model.bin"))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(ValueError, match="no checkpoint found"):
        restore_encoder(wider, str(tmp_path / "empty"))
    partial = dict(weights)
    del partial["bert/encoder/layer_1/output/dense/kernel"]
    write_google_checkpoint(str(tmp_path / "partial"), partial, config)
    with pytest.raises(ValueError, match="lacks 'bert/encoder/layer_1/output/dense/kernel'"):
        restore_encoder(BertEncoder(**config.to_dict()), str(tmp_path / "partial"))


def test_restore_finetuned_model_reads_model_and_names_the_flag(tmp_path):
    from bert_keras.checkpoints import restore_finetuned_model
    from bert_keras.models import BertClassifier

    config = tiny_checkpoint_config()
    trained = BertClassifier(BertEncoder(**config.to_dict()), num_classes=3)
    trained(ENCODER_INPUTS)
    for variable in trained.trainable_variables:
        variable.assign(tf.random.normal(variable.shape, seed=1) * 0.1)
    prefix = tf.train.Checkpoint(model=trained).save(str(tmp_path / "ft" / "ckpt"))
    fresh = BertClassifier(BertEncoder(**config.to_dict()), num_classes=3)
    fresh(ENCODER_INPUTS)
    assert restore_finetuned_model(fresh, str(tmp_path / "ft"), "--checkpoint", "hint") == prefix
    np.testing.assert_array_equal(
        np.asarray(fresh(ENCODER_INPUTS, training=False)),
        np.asarray(trained(ENCODER_INPUTS, training=False)),
    )

    os.makedirs(tmp_path / "none")
    with pytest.raises(ValueError, match=r"--checkpoint=.*none: no checkpoint found"):
        restore_finetuned_model(fresh, str(tmp_path / "none"), "--checkpoint", "hint")
    encoder_only = save_checkpoint(BertEncoder(**config.to_dict()), str(tmp_path / "pre"))
    with pytest.raises(ValueError, match=r"--init_checkpoint=.*not a fine-tuned model.*do this"):
        restore_finetuned_model(fresh, encoder_only, "--init_checkpoint", "do this")
    other_head = BertClassifier(BertEncoder(**config.to_dict()), num_classes=5)
    other_head(ENCODER_INPUTS)
    with pytest.raises(ValueError, match=r"--checkpoint=.*does not fit this model"):
        restore_finetuned_model(other_head, prefix, "--checkpoint", "hint")

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_keras.models import BertEncoder
from tests.bert_keras.models.model_test_utils import (
    assert_config_complete,
    assert_keras_round_trip,
    encoder_inputs,
    non_default_encoder_kwargs,
    tiny_config,
)


def test_outputs_and_shapes():
    config = tiny_config()
    encoder = BertEncoder(**dataclasses.asdict(config))
    outputs = encoder(encoder_inputs(batch=3, seq=24))
    assert outputs["sequence_output"].shape == (3, 24, 32)
    assert outputs["pooled_output"].shape == (3, 32)
    assert len(outputs["encoder_outputs"]) == 2
    np.testing.assert_array_equal(outputs["encoder_outputs"][-1], outputs["sequence_output"])


def test_weights_are_googles_layout():
    config = tiny_config()
    encoder = BertEncoder(**dataclasses.asdict(config))
    encoder(encoder_inputs())
    embed = 64 * 32 + 64 * 32 + 2 * 32 + 2 * 32  # word, position, type, LayerNorm
    block = 4 * (32 * 32 + 32) + 2 * 32 + (32 * 64 + 64) + (64 * 32 + 32) + 2 * 32
    pooler = 32 * 32 + 32
    assert encoder.count_params() == embed + 2 * block + pooler
    stddevs = [float(np.std(encoder.token_embedding.embeddings))]
    assert abs(stddevs[0] - 0.02 * 0.88) < 0.004  # Truncated at 2 sigma: std ~0.88 sigma.
    assert float(np.max(np.abs(encoder.token_embedding.embeddings))) <= 0.04 + 1e-6


def test_config_round_trip_every_argument_non_default(tmp_path):
    kwargs = non_default_encoder_kwargs()
    encoder = BertEncoder(**kwargs, name="enc")
    config = encoder.get_config()
    for key, value in kwargs.items():
        assert config[key] == value
    assert_config_complete(encoder)
    assert_keras_round_trip(encoder, encoder_inputs(vocab=50, seq=20), tmp_path)


def test_trimming_padding_changes_nothing_at_real_positions():
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    trimmed = BertEncoder(**dataclasses.asdict(config), trim_multiple_of=4)
    full = BertEncoder(**dataclasses.asdict(config), trim_padding=False)
    inputs = encoder_inputs(batch=3, seq=40, lengths=[9, 3, 5])
    trimmed(inputs)
    full(inputs)
    full.set_weights(trimmed.get_weights())
    got, want = trimmed(inputs), full(inputs)
    real = inputs["input_mask"].astype(bool)
    np.testing.assert_allclose(
        np.asarray(got["sequence_output"])[real],
        np.asarray(want["sequence_output"])[real],
        atol=1e-5,
    )
    np.testing.assert_allclose(got["pooled_output"], want["pooled_output"], atol=1e-5)
    assert np.all(np.asarray(got["sequence_output"])[:, 12:] == 0)  # Beyond L = 12: zeros.


def test_norm_first_and_dropout_in_training():
    encoder = BertEncoder(**dataclasses.asdict(tiny_config(norm_first=True)))
    inputs = encoder_inputs()
    eval_a = encoder(inputs, training=False)["pooled_output"]
    eval_b = encoder(inputs, training=False)["pooled_output"]
    train = encoder(inputs, training=True)["pooled_output"]
    np.testing.assert_array_equal(eval_a, eval_b)
    assert not np.allclose(eval_a, train)
    assert encoder.final_layer_norm is not None


def test_bad_heads_error():
    with pytest.raises(ValueError, match="not a multiple of num_attention_heads"):
        BertEncoder(**dataclasses.asdict(tiny_config()) | {"num_attention_heads": 5})


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        encoder = BertEncoder(**dataclasses.asdict(tiny_config()))
        outputs = encoder(encoder_inputs())
        assert encoder.token_embedding.embeddings.dtype == "float32"
        assert keras.backend.standardize_dtype(outputs["sequence_output"].dtype) == policy[6:]
        assert np.all(np.isfinite(np.asarray(outputs["sequence_output"], "float32")))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_packed_tokens_match_padded_computation_and_gradients():
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    packed = BertEncoder(**dataclasses.asdict(config), trim_padding=False)
    padded = BertEncoder(**dataclasses.asdict(config), trim_padding=False, pack_tokens=False)
    inputs = encoder_inputs(batch=3, seq=16, lengths=[16, 4, 9])
    packed(inputs)
    padded(inputs)
    padded.set_weights(packed.get_weights())
    real = inputs["input_mask"].astype("float32")[..., None]  # (B, T, 1)

    def loss_and_grads(model):
        with tf.GradientTape() as tape:
            sequence = model(inputs, training=True)["sequence_output"]
            loss = tf.reduce_sum(tf.square(sequence) * real)
        return loss, tape.gradient(loss, model.trainable_variables)

    loss_packed, grads_packed = loss_and_grads(packed)
    loss_padded, grads_padded = loss_and_grads(padded)
    np.testing.assert_allclose(loss_packed, loss_padded, rtol=1e-5)
    for got, want in zip(grads_packed, grads_padded, strict=True):
        if want is None:  # The pooler: not in this loss.
            assert got is None
            continue
        np.testing.assert_allclose(tf.convert_to_tensor(got), tf.convert_to_tensor(want), atol=1e-4)
    assert np.all(np.asarray(packed(inputs)["sequence_output"])[inputs["input_mask"] == 0] == 0)


def test_jit_compiled_training_matches_graph_mode():
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    from bert_keras.models import BertPretrainer
    from tests.bert_keras.models.model_test_utils import pretraining_batch

    inputs, labels = pretraining_batch(batch=3, seq=16, lengths=[16, 4, 9])
    losses = []
    weights = None
    for jit in (False, True):
        model = BertPretrainer(BertEncoder(**dataclasses.asdict(config)))
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit)
        losses.append(
            [model.train_on_batch(inputs, labels, return_dict=True)["loss"] for _ in range(2)]
        )
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)


def test_packed_layer_without_fused_projections_gives_the_same_outputs():
    # LoRA projections cannot be fused: that layer calls its EinsumDense layers instead.
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    fused = BertEncoder(**dataclasses.asdict(config), trim_padding=False)
    plain = BertEncoder(**dataclasses.asdict(config), trim_padding=False)
    inputs = encoder_inputs(batch=3, seq=16, lengths=[16, 4, 9])
    fused(inputs)
    plain(inputs)
    plain.set_weights(fused.get_weights())
    plain.transformer_layers[0]._self_attention_layer._query_dense.enable_lora(2)
    plain.transformer_layers[0]._self_attention_layer._output_dense.enable_lora(2)
    np.testing.assert_allclose(
        plain(inputs)["sequence_output"], fused(inputs)["sequence_output"], atol=1e-5
    )


def test_rows_without_real_tokens_do_not_break_the_batch():
    """A row whose input_mask is all zero (or a whole batch of them) runs forward and
    backward with finite values, and the other rows are as if it were not there."""
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    encoder = BertEncoder(**dataclasses.asdict(config))
    inputs = encoder_inputs(batch=3, seq=12, lengths=[7, 0, 12])
    alone = {k: v[[0, 2]] for k, v in inputs.items()}
    encoder(inputs)
    with tf.GradientTape() as tape:
        outputs = encoder(inputs, training=True)
        loss = tf.reduce_sum(outputs["pooled_output"])
    gradients = tape.gradient(loss, encoder.trainable_variables)
    assert all(np.isfinite(tf.convert_to_tensor(g)).all() for g in gradients if g is not None)
    got, want = encoder(inputs), encoder(alone)
    np.testing.assert_allclose(
        np.asarray(got["pooled_output"])[[0, 2]], want["pooled_output"], atol=1e-5
    )
    empty = {k: v[[1]] for k, v in inputs.items()}
    assert np.isfinite(np.asarray(encoder(empty)["pooled_output"])).all()

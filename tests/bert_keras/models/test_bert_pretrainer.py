import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_keras.models import (
    LOSS_TERM_NAMES,
    BertEncoder,
    BertPretrainer,
    pretraining_loss,
    pretraining_loss_terms,
)
from tests.bert_keras.models.model_test_utils import (
    VOCAB,
    assert_config_complete,
    assert_keras_round_trip,
    pretraining_batch,
    tiny_config,
)


def make_pretrainer(next_sentence=True, **overrides):
    encoder = BertEncoder(**dataclasses.asdict(tiny_config(**overrides)))
    return BertPretrainer(encoder, next_sentence=next_sentence, name="pretrainer")


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_outputs_and_tied_projection():
    model = make_pretrainer()
    inputs, _ = pretraining_batch()
    outputs = model(inputs, training=False)
    assert outputs["mlm_logits"].shape == (3, 4, VOCAB)
    assert outputs["nsp_logits"].shape == (3, 2)
    # The projection is the token embedding: no (D, V) kernel of its own.
    own = [w for w in model.mlm_head.weights if w.shape == (32, VOCAB) or w.shape == (VOCAB, 32)]
    assert own == [model.encoder.token_embedding.embeddings]
    # Logits recomputed by hand from the gathered hidden states.
    encoder_inputs = {k: v for k, v in inputs.items() if k != "masked_lm_positions"}
    sequence = np.asarray(model.encoder(encoder_inputs)["sequence_output"])
    gathered = np.take_along_axis(sequence, inputs["masked_lm_positions"][..., None], axis=1)
    head = model.mlm_head
    hidden = np.asarray(head._intermediate_layer_norm(head._intermediate_dense(gathered)))
    expected = hidden @ np.asarray(model.encoder.token_embedding.embeddings).T + np.asarray(
        head._bias
    )
    np.testing.assert_allclose(outputs["mlm_logits"], expected, atol=1e-5)


def test_loss_terms_match_numpy():
    model = make_pretrainer()
    inputs, labels = pretraining_batch(seed=3)
    outputs = model(inputs, training=False)
    terms = {k: float(v) for k, v in pretraining_loss_terms(labels, outputs).items()}
    assert set(terms) == set(LOSS_TERM_NAMES)
    logp = log_softmax(np.asarray(outputs["mlm_logits"], "float64"))
    ids, weights = labels["masked_lm_ids"], labels["masked_lm_weights"]
    nll = -np.take_along_axis(logp, ids[..., None], -1)[..., 0]
    assert terms["mlm_loss_sum"] == pytest.approx((nll * weights).sum(), rel=1e-5)
    assert terms["mlm_weight_sum"] == pytest.approx(weights.sum())
    hits = (logp.argmax(-1) == ids) * weights
    assert terms["mlm_correct_sum"] == pytest.approx(hits.sum())
    nsp_logp = log_softmax(np.asarray(outputs["nsp_logits"], "float64"))
    nsp = labels["next_sentence_labels"][:, 0]
    assert terms["nsp_loss_sum"] == pytest.approx(-nsp_logp[np.arange(3), nsp].sum(), rel=1e-5)
    assert terms["nsp_count"] == 3.0
    assert terms["nsp_correct_sum"] == pytest.approx((nsp_logp.argmax(-1) == nsp).sum())
    expected_loss = (nll * weights).sum() / weights.sum() - nsp_logp[np.arange(3), nsp].mean()
    assert float(pretraining_loss(terms)) == pytest.approx(expected_loss, rel=1e-5)


def test_without_next_sentence():
    model = make_pretrainer(next_sentence=False)
    inputs, labels = pretraining_batch()
    outputs = model(inputs)
    assert set(outputs) == {"mlm_logits"}
    terms = pretraining_loss_terms(labels, outputs)
    assert float(terms["nsp_count"]) == 0.0 and float(terms["nsp_loss_sum"]) == 0.0


@pytest.mark.parametrize("next_sentence", [True, False])
def test_compile_fit_learns_and_reports_metrics(next_sentence):
    keras.utils.set_random_seed(1)
    model = make_pretrainer(
        next_sentence, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    inputs, labels = pretraining_batch(batch=4, seed=1)
    if not next_sentence:
        labels.pop("next_sentence_labels")
    data = tf.data.Dataset.from_tensors((inputs, labels)).repeat(10)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(data, epochs=3, verbose=0).history
    expected = {"loss", "mlm_accuracy", "mlm_loss"} | (
        {"nsp_accuracy", "nsp_loss"} if next_sentence else set()
    )
    assert set(history) == expected
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["mlm_accuracy"][-1] > history["mlm_accuracy"][0]
    evaluated = model.evaluate(data, verbose=0, return_dict=True)
    terms = pretraining_loss_terms(labels, model(inputs, training=False))
    accuracy = float(terms["mlm_correct_sum"]) / float(terms["mlm_weight_sum"])
    assert evaluated["mlm_accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_config_and_keras_round_trip(tmp_path):
    model = make_pretrainer(next_sentence=False)
    assert_config_complete(model)
    inputs, _ = pretraining_batch()
    restored = assert_keras_round_trip(model, inputs, tmp_path)
    assert restored.next_sentence is False
    restored_embedding = restored.encoder.token_embedding
    assert restored.mlm_head.token_embedding is restored_embedding


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_logits_and_losses_are_float32(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = make_pretrainer()
        inputs, labels = pretraining_batch(batch=4)
        outputs = model(inputs)
        assert outputs["mlm_logits"].dtype == "float32"
        assert outputs["nsp_logits"].dtype == "float32"
        terms = pretraining_loss_terms(labels, outputs)
        assert all(value.dtype == "float32" for value in terms.values())
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        history = model.fit(
            tf.data.Dataset.from_tensors((inputs, labels)).repeat(2), verbose=0
        ).history
        assert np.isfinite(history["loss"][0])
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_loss_gradient_matches_keras_cross_entropy():
    rng = np.random.default_rng(5)
    logits = tf.constant(rng.normal(scale=3.0, size=(3, 4, VOCAB)).astype("float32"))
    labels = {
        "masked_lm_ids": rng.integers(0, VOCAB, (3, 4)).astype("int32"),
        "masked_lm_weights": np.array([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], "float32"),
    }
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        terms = pretraining_loss_terms(labels, {"mlm_logits": logits})
        xent = keras.ops.sparse_categorical_crossentropy(
            labels["masked_lm_ids"], logits, from_logits=True
        )
        reference = tf.reduce_sum(xent * labels["masked_lm_weights"])
    np.testing.assert_allclose(terms["mlm_loss_sum"], reference, rtol=1e-6)
    np.testing.assert_allclose(
        tape.gradient(terms["mlm_loss_sum"], logits), tape.gradient(reference, logits), atol=1e-6
    )

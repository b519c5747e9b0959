"""Shared helpers for the model tests: tiny configs, seeded inputs, round-trip checks."""

from __future__ import annotations

import inspect

import keras
import numpy as np

from bert_keras.config import BertConfig

VOCAB = 64


def tiny_config(**overrides) -> BertConfig:
    values = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    values.update(overrides)
    return BertConfig(**values)


def non_default_encoder_kwargs() -> dict:
    """Every BertEncoder argument set to a value other than its default."""
    return dict(
        vocab_size=50,
        hidden_size=24,
        num_hidden_layers=1,
        num_attention_heads=3,
        intermediate_size=40,
        hidden_act="relu",
        hidden_dropout_prob=0.2,
        attention_probs_dropout_prob=0.3,
        max_position_embeddings=40,
        type_vocab_size=3,
        initializer_range=0.05,
        layer_norm_epsilon=1e-6,
        norm_first=True,
        trim_padding=False,
        trim_multiple_of=8,
        pack_tokens=False,
    )


def encoder_inputs(batch=3, seq=24, vocab=VOCAB, lengths=None, seed=0) -> dict:
    """Int32 (B, T) inputs with padding at the end of each row (default lengths vary)."""
    rng = np.random.default_rng(seed)
    if lengths is None:
        lengths = [seq] + [int(rng.integers(3, seq)) for _ in range(batch - 1)]
    mask = (np.arange(seq)[None, :] < np.asarray(lengths)[:, None]).astype("int32")
    word_ids = rng.integers(5, vocab, (batch, seq)).astype("int32") * mask
    type_ids = ((np.arange(seq)[None, :] >= np.asarray(lengths)[:, None] // 2) * mask).astype(
        "int32"
    )
    return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids}


def pretraining_batch(batch=3, seq=24, predictions=4, vocab=VOCAB, seed=0, lengths=None):
    """(inputs, labels) shaped like `bert_keras.records.to_model_inputs` output."""
    rng = np.random.default_rng(seed)
    inputs = encoder_inputs(batch, seq, vocab, lengths=lengths, seed=seed)
    real = inputs["input_mask"].sum(axis=1)
    positions = np.zeros((batch, predictions), "int32")
    weights = np.zeros((batch, predictions), "float32")
    for row, length in enumerate(real):
        count = min(predictions, max(1, int(length) - 2))
        positions[row, :count] = np.sort(rng.choice(np.arange(1, length), count, replace=False))
        weights[row, :count] = 1.0
    inputs["masked_lm_positions"] = positions
    labels = {
        "masked_lm_ids": (rng.integers(5, vocab, (batch, predictions)) * weights).astype("int32"),
        "masked_lm_weights": weights,
        "next_sentence_labels": rng.integers(0, 2, (batch, 1)).astype("int32"),
    }
    return inputs, labels


def assert_config_complete(obj) -> None:
    """get_config() names every __init__ argument, and from_config rebuilds the same config."""
    config = obj.get_config()
    params = inspect.signature(type(obj).__init__).parameters
    missing = [
        name
        for name, param in params.items()
        if name not in ("self", "dtype")
        and param.kind is param.POSITIONAL_OR_KEYWORD
        and name not in config
    ]
    assert not missing, f"{type(obj).__name__}.get_config() lacks {missing}"
    rebuilt = type(obj).from_config(config)
    assert rebuilt.get_config() == config


def flat_outputs(outputs) -> list[np.ndarray]:
    return [np.asarray(x) for x in keras.tree.flatten(outputs)]


def assert_keras_round_trip(model, inputs, tmp_path) -> keras.Model:
    """`.keras` save + `load_model(safe_mode=True)` gives the same outputs."""
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored) is type(model)
    expected = flat_outputs(model(inputs, training=False))
    actual = flat_outputs(restored(inputs, training=False))
    assert len(expected) == len(actual)
    for want, got in zip(expected, actual, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    return restored

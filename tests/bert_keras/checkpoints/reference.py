"""Test fixtures for checkpoint import: random weights under google-research/bert's (GB)
names, writers for GB's TF1 and Hugging Face's formats, and a NumPy forward pass."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import tensorflow as tf

from bert_keras.config import BertConfig


def tiny_checkpoint_config(**overrides) -> BertConfig:
    values = dict(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=40,
        type_vocab_size=2,
    )
    values.update(overrides)
    return BertConfig(**values)


def random_google_weights(config: BertConfig, seed: int = 0, heads: bool = True) -> dict:
    """Every GB variable, in GB's layout, with values far from any initializer's."""
    rng = np.random.default_rng(seed)
    d, f, v = config.hidden_size, config.intermediate_size, config.vocab_size

    def normal(*shape, scale=0.2):
        return rng.normal(0.0, scale, shape).astype(np.float32)

    weights = {
        "bert/embeddings/word_embeddings": normal(v, d),
        "bert/embeddings/position_embeddings": normal(config.max_position_embeddings, d),
        "bert/embeddings/token_type_embeddings": normal(config.type_vocab_size, d),
    }

    def layer_norm(name):
        weights[f"{name}/gamma"] = 1.0 + normal(d, scale=0.1)
        weights[f"{name}/beta"] = normal(d, scale=0.1)

    def dense(name, n_in, n_out):
        weights[f"{name}/kernel"] = normal(n_in, n_out, scale=1.0 / math.sqrt(n_in))
        weights[f"{name}/bias"] = normal(n_out, scale=0.1)

    layer_norm("bert/embeddings/LayerNorm")
    for i in range(config.num_hidden_layers):
        p = f"bert/encoder/layer_{i}"
        for part in ("query", "key", "value"):
            dense(f"{p}/attention/self/{part}", d, d)
        dense(f"{p}/attention/output/dense", d, d)
        layer_norm(f"{p}/attention/output/LayerNorm")
        dense(f"{p}/intermediate/dense", d, f)
        dense(f"{p}/output/dense", f, d)
        layer_norm(f"{p}/output/LayerNorm")
    dense("bert/pooler/dense", d, d)
    if heads:
        dense("cls/predictions/transform/dense", d, d)
        layer_norm("cls/predictions/transform/LayerNorm")
        weights["cls/predictions/output_bias"] = normal(v, scale=0.1)
        weights["cls/seq_relationship/output_weights"] = normal(2, d)  # GB: (2, D).
        weights["cls/seq_relationship/output_bias"] = normal(2, scale=0.1)
    return weights


def write_google_checkpoint(directory: str, weights: dict, config: BertConfig) -> str:
    """Writes `bert_model.ckpt` with a TF1 Saver (GB's exact variable names) + config."""
    os.makedirs(directory, exist_ok=True)
    prefix = os.path.join(directory, "bert_model.ckpt")
    with tf.Graph().as_default():
        variables = [tf.compat.v1.Variable(value, name=name) for name, value in weights.items()]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, prefix, write_meta_graph=False, write_state=False)
    config.to_json_file(os.path.join(directory, "bert_config.json"))
    return prefix


def to_hugging_face(weights: dict, bert_prefix: bool, legacy_layer_norm: bool) -> dict:
    """GB names/layouts -> HF's (torch Linear weights are (out, in))."""
    converted = {}
    for name, value in weights.items():
        if name == "cls/predictions/output_bias":
            converted["cls.predictions.bias"] = value
            converted["cls.predictions.decoder.bias"] = value
            continue
        if name == "cls/seq_relationship/output_weights":
            converted["cls.seq_relationship.weight"] = value  # Already (2, D) = (out, in).
            continue
        if name == "cls/seq_relationship/output_bias":
            converted["cls.seq_relationship.bias"] = value
            continue
        parts = name.split("/")
        if parts[0] == "bert":
            parts = (["bert"] if bert_prefix else []) + parts[1:]
        parts = [p.replace("layer_", "layer.") if p.startswith("layer_") else p for p in parts]
        leaf = parts[-1]
        path = ".".join(parts[:-1])
        if leaf == "kernel":
            converted[f"{path}.weight"] = np.ascontiguousarray(value.T)
        elif leaf == "gamma":
            converted[f"{path}.{'gamma' if legacy_layer_norm else 'weight'}"] = value
        elif leaf == "beta":
            converted[f"{path}.{'beta' if legacy_layer_norm else 'bias'}"] = value
        elif leaf == "bias":
            converted[f"{path}.bias"] = value
        else:
            converted[f"{path}.{leaf}.weight"] = value
    if "cls.predictions.bias" in converted:  # Tied decoder, stored by HF too.
        converted["cls.predictions.decoder.weight"] = converted[
            ("bert." if bert_prefix else "") + "embeddings.word_embeddings.weight"
        ]
    positions = np.arange(weights["bert/embeddings/position_embeddings"].shape[0])[None]
    converted[("bert." if bert_prefix else "") + "embeddings.position_ids"] = positions
    return converted


def write_hugging_face(directory: str, tensors: dict, config: BertConfig, **extra) -> None:
    from safetensors.numpy import save_file

    os.makedirs(directory, exist_ok=True)
    save_file(tensors, os.path.join(directory, "model.safetensors"))
    values = config.to_dict()
    values["layer_norm_eps"] = values.pop("layer_norm_epsilon")
    values.pop("norm_first")
    values.update(model_type="bert", architectures=["BertForPreTraining"], **extra)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(values, f)


_erf = np.vectorize(math.erf)


def _gelu(x, hidden_act):
    if hidden_act == "gelu":
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _layer_norm(x, weights, name, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weights[f"{name}/gamma"] + weights[f"{name}/beta"]


def numpy_forward(weights: dict, config: BertConfig, inputs: dict) -> dict:
    """GB's modeling.py forward pass in float64 NumPy (inference: no dropout)."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    ids, mask, types = (inputs[k] for k in ("input_word_ids", "input_mask", "input_type_ids"))
    b, t = ids.shape
    n = config.num_attention_heads
    h = config.hidden_size // n
    eps = config.layer_norm_epsilon
    x = (
        w["bert/embeddings/word_embeddings"][ids]
        + w["bert/embeddings/position_embeddings"][:t][None]
        + w["bert/embeddings/token_type_embeddings"][types]
    )  # (B, T, D)
    x = _layer_norm(x, w, "bert/embeddings/LayerNorm", eps)
    adder = (1.0 - mask[:, None, None, :]) * -10000.0  # (B, 1, 1, T), as GB.

    def dense(x, name):
        return x @ w[f"{name}/kernel"] + w[f"{name}/bias"]

    def heads(x):
        return x.reshape(b, t, n, h).transpose(0, 2, 1, 3)  # (B, N, T, H)

    for i in range(config.num_hidden_layers):
        p = f"bert/encoder/layer_{i}"
        q, k, v = (
            heads(dense(x, f"{p}/attention/self/{part}")) for part in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(h) + adder  # (B, N, T, T)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(b, t, n * h)  # (B, T, D)
        x = _layer_norm(
            dense(context, f"{p}/attention/output/dense") + x,
            w,
            f"{p}/attention/output/LayerNorm",
            eps,
        )
        inner = _gelu(dense(x, f"{p}/intermediate/dense"), config.hidden_act)
        x = _layer_norm(dense(inner, f"{p}/output/dense") + x, w, f"{p}/output/LayerNorm", eps)
    outputs = {"sequence_output": x, "pooled_output": np.tanh(dense(x[:, 0], "bert/pooler/dense"))}
    if "masked_lm_positions" in inputs and "cls/predictions/output_bias" in w:
        gathered = np.take_along_axis(x, inputs["masked_lm_positions"][..., None], axis=1)
        hidden = _gelu(dense(gathered, "cls/predictions/transform/dense"), config.hidden_act)
        hidden = _layer_norm(hidden, w, "cls/predictions/transform/LayerNorm", eps)
        outputs["mlm_logits"] = (
            hidden @ w["bert/embeddings/word_embeddings"].T + w["cls/predictions/output_bias"]
        )
        outputs["nsp_logits"] = (
            outputs["pooled_output"] @ w["cls/seq_relationship/output_weights"].T
            + w["cls/seq_relationship/output_bias"]
        )
    return outputs

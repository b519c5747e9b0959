"""Which model variable holds which weight of google-research/bert's (GB) checkpoints.

GB's TF1 variable names are the common vocabulary: the Hugging Face reader translates its
names and layouts into GB's, so one table serves both formats.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

# How a GB array becomes the variable's value.
SAME = "same"
RESHAPE = "reshape"  # Attention kernels: GB (D, D) -> keras-hub (D, N, H) or (N, H, D).
TRANSPOSE = "transpose"  # cls/seq_relationship/output_weights is (2, D); Dense wants (D, 2).


@dataclasses.dataclass(frozen=True)
class WeightEntry:
    variable: Any  # a keras.Variable
    name: str  # GB's variable name
    layout: str = SAME
    required: bool = True


def _dense(layer, name: str, layout: str = SAME, required: bool = True) -> list[WeightEntry]:
    return [
        WeightEntry(layer.kernel, f"{name}/kernel", layout, required),
        WeightEntry(layer.bias, f"{name}/bias", RESHAPE if layout == RESHAPE else SAME, required),
    ]


def _layer_norm(layer, name: str) -> list[WeightEntry]:
    return [WeightEntry(layer.gamma, f"{name}/gamma"), WeightEntry(layer.beta, f"{name}/beta")]


def encoder_weight_map(encoder) -> list[WeightEntry]:
    """All of `BertEncoder`'s variables with GB's names. The pooler is optional (Hugging
    Face's `BertForMaskedLM` has none)."""
    if encoder.norm_first:
        raise ValueError(
            "BERT checkpoints from Google and Hugging Face are post-LN; this encoder has "
            "norm_first=True. Build it with norm_first=False to import them."
        )
    entries = [
        WeightEntry(encoder.token_embedding.embeddings, "bert/embeddings/word_embeddings"),
        WeightEntry(
            encoder.position_embedding.position_embeddings, "bert/embeddings/position_embeddings"
        ),
        WeightEntry(encoder.segment_embedding.embeddings, "bert/embeddings/token_type_embeddings"),
        *_layer_norm(encoder.embeddings_layer_norm, "bert/embeddings/LayerNorm"),
    ]
    for i, layer in enumerate(encoder.transformer_layers):
        prefix = f"bert/encoder/layer_{i}"
        attention = layer._self_attention_layer
        entries += _dense(attention._query_dense, f"{prefix}/attention/self/query", RESHAPE)
        entries += _dense(attention._key_dense, f"{prefix}/attention/self/key", RESHAPE)
        entries += _dense(attention._value_dense, f"{prefix}/attention/self/value", RESHAPE)
        entries += [
            WeightEntry(
                attention._output_dense.kernel, f"{prefix}/attention/output/dense/kernel", RESHAPE
            ),
            WeightEntry(attention._output_dense.bias, f"{prefix}/attention/output/dense/bias"),
        ]
        entries += _layer_norm(
            layer._self_attention_layer_norm, f"{prefix}/attention/output/LayerNorm"
        )
        entries += _dense(layer._feedforward_intermediate_dense, f"{prefix}/intermediate/dense")
        entries += _dense(layer._feedforward_output_dense, f"{prefix}/output/dense")
        entries += _layer_norm(layer._feedforward_layer_norm, f"{prefix}/output/LayerNorm")
    entries += _dense(encoder.pooler_dense, "bert/pooler/dense", required=False)
    return entries


def pretrainer_head_weight_map(pretrainer) -> list[WeightEntry]:
    """The `cls/*` heads of `BertPretrainer` (the tied projection is the word embedding)."""
    head = pretrainer.mlm_head
    entries = [
        *_dense(head._intermediate_dense, "cls/predictions/transform/dense"),
        *_layer_norm(head._intermediate_layer_norm, "cls/predictions/transform/LayerNorm"),
        WeightEntry(head._bias, "cls/predictions/output_bias"),
    ]
    if pretrainer.nsp_dense is not None:  # Optional: HF's BertForMaskedLM has no NSP head.
        entries += [
            WeightEntry(
                pretrainer.nsp_dense.kernel,
                "cls/seq_relationship/output_weights",
                TRANSPOSE,
                required=False,
            ),
            WeightEntry(
                pretrainer.nsp_dense.bias, "cls/seq_relationship/output_bias", required=False
            ),
        ]
    return entries


def to_variable_layout(value: np.ndarray, entry: WeightEntry) -> np.ndarray | None:
    """The array reshaped/transposed for `entry.variable`, or None if the sizes disagree."""
    shape = tuple(entry.variable.shape)
    if entry.layout == TRANSPOSE:
        value = value.T
    if entry.layout == RESHAPE and value.size == int(np.prod(shape)):
        value = value.reshape(shape)
    return value if tuple(value.shape) == shape else None

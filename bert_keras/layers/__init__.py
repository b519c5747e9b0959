"""Building blocks of the BERT models."""

from bert_keras.layers.activations import get_activation
from bert_keras.layers.masked_lm_head import BertMaskedLMHead
from bert_keras.layers.padding import RestorePadding, TrimPadding, trim_batch, trimmed_length
from bert_keras.layers.transformer_layer import BertTransformerLayer

__all__ = [
    "BertMaskedLMHead",
    "BertTransformerLayer",
    "RestorePadding",
    "TrimPadding",
    "get_activation",
    "trim_batch",
    "trimmed_length",
]

"""Building blocks of the BERT models."""

from bert_keras.layers.activations import get_activation
from bert_keras.layers.masked_lm_head import BertMaskedLMHead
from bert_keras.layers.padding import (
    PadTokens,
    RestorePadding,
    TrimPadding,
    UnpadTokens,
    pad_tokens,
    trim_batch,
    trimmed_length,
    unpad_tokens,
)
from bert_keras.layers.transformer_layer import BertTransformerLayer

__all__ = [
    "BertMaskedLMHead",
    "BertTransformerLayer",
    "PadTokens",
    "RestorePadding",
    "TrimPadding",
    "UnpadTokens",
    "get_activation",
    "pad_tokens",
    "trim_batch",
    "trimmed_length",
    "unpad_tokens",
]

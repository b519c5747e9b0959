"""Trainable BERT models: the encoder, the pretrainer and the fine-tuning heads."""

from bert_keras.models.bert_classifier import BertClassifier
from bert_keras.models.bert_encoder import BertEncoder
from bert_keras.models.bert_pretrainer import (
    LOSS_TERM_NAMES,
    BertPretrainer,
    pretraining_loss,
    pretraining_loss_terms,
)
from bert_keras.models.bert_span_labeler import BertSpanLabeler
from bert_keras.models.bert_token_classifier import BertTokenClassifier

__all__ = [
    "LOSS_TERM_NAMES",
    "BertClassifier",
    "BertEncoder",
    "BertPretrainer",
    "BertSpanLabeler",
    "BertTokenClassifier",
    "pretraining_loss",
    "pretraining_loss_terms",
]

"""Extractive question answering on SQuAD 1.1 / 2.0: reading, features, decoding,
evaluation and the fine-tuning driver (`python -m bert_keras.finetune --task=squad_v1`)."""

from bert_keras.squad.features import SquadFeatures, convert_examples_to_features
from bert_keras.squad.postprocess import Predictions, predict_answers, write_predictions
from bert_keras.squad.reader import Answer, SquadExample, gold_answers, read_squad

__all__ = [
    "Answer",
    "Predictions",
    "SquadExample",
    "SquadFeatures",
    "convert_examples_to_features",
    "gold_answers",
    "predict_answers",
    "read_squad",
    "write_predictions",
]

"""Serving: SavedModels taking raw text for TF Serving (see docs/serving.md)."""

from bert_keras.serving.classifier_module import ClassifierModule
from bert_keras.serving.encoder_module import EncoderModule
from bert_keras.serving.export_layout import existing_versions, next_version, write_versioned
from bert_keras.serving.fill_mask_module import FillMaskModule
from bert_keras.serving.preprocessor_module import PreprocessorModule
from bert_keras.serving.serving_module import BertServingModule

__all__ = [
    "BertServingModule",
    "ClassifierModule",
    "EncoderModule",
    "FillMaskModule",
    "PreprocessorModule",
    "existing_versions",
    "next_version",
    "write_versioned",
]

"""Checkpoint import/export: ours, google-research/bert's TF1 and Hugging Face safetensors."""

from bert_keras.checkpoints.restore import (
    config_from_checkpoint,
    detect_format,
    restore_encoder,
    restore_finetuned_model,
    restore_pretrainer,
    save_checkpoint,
)

__all__ = [
    "config_from_checkpoint",
    "detect_format",
    "restore_encoder",
    "restore_finetuned_model",
    "restore_pretrainer",
    "save_checkpoint",
]

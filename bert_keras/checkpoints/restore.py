"""Restoring a `BertEncoder` (and the pretraining heads) from any supported checkpoint.

Formats, detected from the path:
- ours: a `tf.train.Checkpoint` whose root has `encoder=` (pretraining adds `pretrainer=`),
  `bert_config.json` beside it; a prefix (`.../ckpt-5`) or a directory (latest checkpoint);
- google: google-research/bert's TF1 `bert_model.ckpt` (prefix or its directory), with
  `bert_config.json` beside it;
- huggingface: a directory with `config.json` and `model.safetensors`, with or without
  the `bert.` prefix and the `cls.*` heads.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf
from absl import logging

from bert_keras.checkpoints.readers import (
    HF_INDEX,
    HF_WEIGHTS,
    GoogleCheckpointReader,
    HuggingFaceReader,
)
from bert_keras.checkpoints.weight_map import (
    encoder_weight_map,
    pretrainer_head_weight_map,
    to_variable_layout,
)
from bert_keras.config import BertConfig

OURS, GOOGLE, HUGGING_FACE = "ours", "google", "huggingface"
CONFIG_NAMES = ("bert_config.json", "config.json")
# Config fields that decide variable shapes, compared before any weight is read.
_SHAPE_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
    "norm_first",
)


def _resolve(path: str) -> tuple[str, str]:
    """(format, prefix or directory) for a checkpoint path; ValueError saying what is missing."""
    path = os.fspath(path)
    if path.endswith(".bin"):
        raise ValueError(
            f"{path}: PyTorch pickles are not read (unpickling runs code); save the model "
            "with safetensors (`save_pretrained(..., safe_serialization=True)`)."
        )
    if tf.io.gfile.isdir(path):
        if tf.io.gfile.exists(os.path.join(path, HF_WEIGHTS)) or tf.io.gfile.exists(
            os.path.join(path, HF_INDEX)
        ):
            return HUGGING_FACE, path
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None and tf.io.gfile.exists(os.path.join(path, "bert_model.ckpt.index")):
            prefix = os.path.join(path, "bert_model.ckpt")
        if prefix is None:
            raise ValueError(
                f"{path}: no checkpoint found; expected {HF_WEIGHTS} (Hugging Face), a "
                "`checkpoint` state file (ours) or bert_model.ckpt.index (Google)."
            )
    else:
        prefix = path[: -len(".index")] if path.endswith(".index") else path
        if not tf.io.gfile.exists(prefix + ".index"):
            raise ValueError(f"{path}: not a checkpoint ({prefix}.index does not exist).")
    names = [name for name, _ in tf.train.list_variables(prefix)]
    if "bert/embeddings/word_embeddings" in names:
        return GOOGLE, prefix
    if any(name.startswith(("encoder/", "pretrainer/")) for name in names):
        return OURS, prefix
    raise ValueError(
        f"{prefix}: neither a Google BERT checkpoint (no bert/embeddings/word_embeddings) nor "
        f"ours (no encoder/ or pretrainer/ object); it holds {sorted(names)[:6]}..."
    )


def detect_format(path: str) -> str:
    """ "ours", "google" or "huggingface"."""
    return _resolve(path)[0]


def config_from_checkpoint(path: str) -> BertConfig:
    """The `BertConfig` stored beside a checkpoint (bert_config.json, or HF's config.json)."""
    _, location = _resolve(path)
    directory = location if tf.io.gfile.isdir(location) else os.path.dirname(location)
    for name in CONFIG_NAMES:
        candidate = os.path.join(directory, name)
        if tf.io.gfile.exists(candidate):
            return BertConfig.from_json_file(candidate)
    raise ValueError(f"{directory}: no {' or '.join(CONFIG_NAMES)} beside the checkpoint.")


def _encoder_config(encoder) -> dict:
    return {name: getattr(encoder, name) for name in _SHAPE_FIELDS}


def _check_config(encoder, location: str) -> None:
    """Compares the encoder with the checkpoint's config, if there is one, up front."""
    try:
        config = config_from_checkpoint(location)
    except ValueError:
        return  # No config beside it: the per-tensor shape checks still apply.
    wanted = dataclasses.asdict(config)
    diffs = [
        f"{name}: model {value} vs checkpoint {wanted[name]}"
        for name, value in _encoder_config(encoder).items()
        if wanted[name] != value
    ]
    if diffs:
        raise ValueError(
            f"{location}: the checkpoint's config disagrees with the model ({'; '.join(diffs)}). "
            "Build the encoder from `config_from_checkpoint(path)`."
        )


def _assign_all(entries, reader, encoder) -> list[str]:
    """Checks every shape first, then assigns; returns the optional names not found."""
    values, absent = [], []
    for entry in entries:
        value = reader.get(entry.name)
        if value is None:
            if entry.required:
                raise ValueError(
                    f"{reader.source}: lacks {entry.name!r} (or its Hugging Face name), "
                    f"needed by {entry.variable.path}."
                )
            absent.append(entry.name)
            continue
        converted = to_variable_layout(value, entry)
        if converted is None:
            raise ValueError(
                f"{reader.source}: {entry.name} has shape {value.shape}, but "
                f"{entry.variable.path} needs {tuple(entry.variable.shape)}; the checkpoint "
                f"does not fit this model ({_encoder_config(encoder)}). Build the encoder from "
                "`config_from_checkpoint(path)`."
            )
        values.append((entry.variable, converted))
    for variable, value in values:
        variable.assign(value.astype(np.float32))
    return absent


def _restore_ours(root_name: str, model, prefix: str) -> None:
    try:
        status = tf.train.Checkpoint(**{root_name: model}).read(prefix)
        status.assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.InvalidArgumentError) as e:
        raise ValueError(
            f"{prefix}: cannot restore `{root_name}` ({e}). The checkpoint may come from a "
            "model of another config: build it from `config_from_checkpoint(path)`."
        ) from e
    status.expect_partial()


def restore_encoder(encoder, path: str) -> str:
    """Loads `encoder`'s weights from ours, Google's or Hugging Face's checkpoint.

    Returns the detected format. Raises ValueError naming the checkpoint and the variable
    when its config or a tensor shape disagrees with the model.
    """
    fmt, location = _resolve(path)
    _check_config(encoder, location)
    if fmt == OURS:
        names = [name for name, _ in tf.train.list_variables(location)]
        root = "encoder" if any(n.startswith("encoder/") for n in names) else "pretrainer"
        _restore_ours(root, encoder if root == "encoder" else _EncoderOnly(encoder), location)
        return fmt
    reader = GoogleCheckpointReader(location) if fmt == GOOGLE else HuggingFaceReader(location)
    absent = _assign_all(encoder_weight_map(encoder), reader, encoder)
    if absent:
        logging.warning("%s: no %s; these keep their initial values.", location, absent)
    return fmt


def restore_pretrainer(pretrainer, path: str) -> str:
    """Like `restore_encoder` for a `BertPretrainer`, with the `cls/*` heads where present
    (a checkpoint without them leaves the heads at their initial values, with a warning)."""
    fmt, location = _resolve(path)
    _check_config(pretrainer.encoder, location)
    if fmt == OURS:
        names = [name for name, _ in tf.train.list_variables(location)]
        if any(n.startswith("pretrainer/") for n in names):
            _restore_ours("pretrainer", pretrainer, location)
        else:
            logging.warning("%s: holds no pretrainer heads; restoring the encoder only.", location)
            _restore_ours("encoder", pretrainer.encoder, location)
        return fmt
    reader = GoogleCheckpointReader(location) if fmt == GOOGLE else HuggingFaceReader(location)
    absent = _assign_all(encoder_weight_map(pretrainer.encoder), reader, pretrainer.encoder)
    heads = pretrainer_head_weight_map(pretrainer)
    if all(reader.get(entry.name) is None for entry in heads):
        logging.warning("%s: no cls/* heads; the pretrainer heads keep initial values.", location)
    else:
        absent += _assign_all(heads, reader, pretrainer.encoder)
    if absent:
        logging.warning("%s: no %s; these keep their initial values.", location, absent)
    return fmt


class _EncoderOnly(tf.Module):
    """Reads `pretrainer/encoder/...` of a pretraining checkpoint into an encoder alone."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder


def restore_finetuned_model(model, path: str, flag: str, not_finetuned_hint: str) -> str:
    """Reads `model=` of our fine-tuning checkpoint (a prefix, or a directory: its latest)
    into `model`; returns the prefix read.

    ValueErrors name `flag` (e.g. "--checkpoint"): no checkpoint there; a checkpoint without
    a fine-tuned `model` (`not_finetuned_hint` says what to do instead); weights that do not
    fit `model` (other head size or config).
    """
    prefix = tf.train.latest_checkpoint(path) if tf.io.gfile.isdir(path) else path
    if prefix is None or not tf.io.gfile.exists(prefix + ".index"):
        raise ValueError(f"{flag}={path}: no checkpoint found there.")
    names = [name for name, _ in tf.train.list_variables(prefix)]
    if not any(name.startswith("model/") for name in names):
        raise ValueError(
            f"{flag}={prefix}: not a fine-tuned model (no `model` object); {not_finetuned_hint}"
        )
    try:
        status = tf.train.Checkpoint(model=model).read(prefix)
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:  # ValueError: a variable of another shape.
        raise ValueError(f"{flag}={prefix}: does not fit this model and config ({e}).") from e
    status.expect_partial()
    return prefix


def save_checkpoint(encoder, directory: str, config: BertConfig | None = None, **objects) -> str:
    """Writes our format: `tf.train.Checkpoint(encoder=encoder, **objects)` and its config.

    Returns the checkpoint prefix. `config` defaults to the encoder's own fields.
    """
    tf.io.gfile.makedirs(directory)
    if config is None:
        config = BertConfig(
            **{field.name: getattr(encoder, field.name) for field in dataclasses.fields(BertConfig)}
        )
    config.to_json_file(os.path.join(directory, "bert_config.json"))
    checkpoint = tf.train.Checkpoint(encoder=encoder, **objects)
    manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=None)
    return manager.save()

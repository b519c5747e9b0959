"""Reading weights by GB name from Google TF1 checkpoints and Hugging Face directories."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import tensorflow as tf

HF_WEIGHTS = "model.safetensors"
HF_INDEX = "model.safetensors.index.json"


class GoogleCheckpointReader:
    """A TF1 checkpoint (`bert_model.ckpt`): GB's names are its variable names."""

    def __init__(self, prefix: str):
        self.source = prefix
        self._reader = tf.train.load_checkpoint(prefix)
        self.names = set(self._reader.get_variable_to_shape_map())

    def get(self, gb_name: str) -> np.ndarray | None:
        if gb_name not in self.names:
            return None
        return np.asarray(self._reader.get_tensor(gb_name), np.float32)


def _hf_candidates(gb_name: str, bert_prefix: str) -> list[tuple[str, bool]]:
    """Hugging Face names for a GB name, each with whether the array needs a transpose.

    GB `bert/encoder/layer_3/attention/self/query/kernel` is HF
    `bert.encoder.layer.3.attention.self.query.weight`, a torch Linear weight (out, in).
    """
    special = {
        "cls/predictions/output_bias": [
            ("cls.predictions.bias", False),
            ("cls.predictions.decoder.bias", False),
        ],
        # Both GB and torch store this one as (2, D): no transpose to reach GB's layout.
        "cls/seq_relationship/output_weights": [("cls.seq_relationship.weight", False)],
        "cls/seq_relationship/output_bias": [("cls.seq_relationship.bias", False)],
    }
    if gb_name in special:
        return special[gb_name]
    path, leaf = gb_name.rsplit("/", 1)
    if path.startswith("bert/"):
        path = bert_prefix + path[len("bert/") :]
    path = re.sub(r"layer_(\d+)", r"layer.\1", path).replace("/", ".")
    if leaf == "kernel":
        return [(f"{path}.weight", True)]
    if leaf == "gamma":
        return [(f"{path}.weight", False), (f"{path}.gamma", False)]
    if leaf == "beta":
        return [(f"{path}.bias", False), (f"{path}.beta", False)]
    if leaf == "bias":
        return [(f"{path}.bias", False)]
    return [(f"{path}.{leaf}.weight", False)]  # Embedding tables.


class HuggingFaceReader:
    """A directory with `model.safetensors` (or a sharded index). `.bin` is never read:
    unpickling runs arbitrary code."""

    def __init__(self, directory: str):
        from safetensors import safe_open

        self.source = directory
        index = os.path.join(directory, HF_INDEX)
        if tf.io.gfile.exists(index):
            with tf.io.gfile.GFile(index) as f:
                files = sorted(set(json.load(f)["weight_map"].values()))
        else:
            files = [HF_WEIGHTS]
        self._tensors = {}
        for file in files:
            path = os.path.join(directory, file)
            if not tf.io.gfile.exists(path):
                raise FileNotFoundError(f"{path}: missing safetensors file of {directory}.")
            with safe_open(path, framework="tf") as f:
                for key in f.keys():
                    self._tensors[key] = (path, key)
        self.names = set(self._tensors)
        if "bert.embeddings.word_embeddings.weight" in self.names:
            self._bert_prefix = "bert."
        elif "embeddings.word_embeddings.weight" in self.names:
            self._bert_prefix = ""
        else:
            raise ValueError(
                f"{directory}: no BERT word embeddings ('bert.embeddings.word_embeddings.weight' "
                f"or 'embeddings.word_embeddings.weight') among {sorted(self.names)[:8]}..."
            )

    def _load(self, key: str) -> np.ndarray:
        from safetensors import safe_open

        path, name = self._tensors[key]
        with safe_open(path, framework="tf") as f:
            return tf.cast(f.get_tensor(name), tf.float32).numpy()  # bf16/fp16 files too.

    def get(self, gb_name: str) -> np.ndarray | None:
        for hf_name, transpose in _hf_candidates(gb_name, self._bert_prefix):
            if hf_name in self._tensors:
                value = self._load(hf_name)
                return value.T if transpose else value
        return None

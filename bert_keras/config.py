"""`BertConfig`: the model hyper-parameters, with google-research/bert's (GB) field names.

The same names are the constructor arguments of `BertEncoder`, so
`BertEncoder(**dataclasses.asdict(config))` builds the model, and GB's `bert_config.json`
reads as is. The config is written as JSON beside every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import tensorflow as tf

# GB's published sizes: (num_hidden_layers, hidden_size, num_attention_heads); FFN 4x hidden.
PRESETS: dict[str, tuple[int, int, int]] = {
    "tiny": (2, 128, 2),
    "mini": (4, 256, 4),
    "small": (4, 512, 8),
    "medium": (8, 512, 8),
    "base": (12, 768, 12),
    "large": (24, 1024, 16),
}

# Keys of Hugging Face's config.json that have no field here and are safe to drop.
_IGNORED_KEYS = {
    "architectures",
    "model_type",
    "transformers_version",
    "pad_token_id",
    "position_embedding_type",
    "use_cache",
    "classifier_dropout",
    "gradient_checkpointing",
    "torch_dtype",
    "directionality",
    "pooler_fc_size",
    "pooler_num_attention_heads",
    "pooler_num_fc_layers",
    "pooler_size_per_head",
    "pooler_type",
    "_name_or_path",
    "id2label",
    "label2id",
    "problem_type",
    "dtype",
}


@dataclasses.dataclass
class BertConfig:
    """BERT hyper-parameters. Defaults are BERT-base's (GB's `bert_config.json` for base)."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"  # "gelu" is exact (erf) as in GB; see layers/activations.py.
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02  # stddev of the truncated normal initializer.
    layer_norm_epsilon: float = 1e-12
    norm_first: bool = False  # False: post-LN as in BERT; True: pre-LN.

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not a multiple of "
                f"num_attention_heads={self.num_attention_heads}."
            )
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        ):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"BertConfig.{name} must be positive, got {getattr(self, name)}.")

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "dict") -> BertConfig:
        """Builds a config from GB's or Hugging Face's JSON keys; unknown keys are an error."""
        values = dict(values)
        if "layer_norm_eps" in values:  # Hugging Face's name.
            values["layer_norm_epsilon"] = values.pop("layer_norm_eps")
        fields = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields - _IGNORED_KEYS)
        if unknown:
            raise ValueError(
                f"{source}: unknown BERT config keys {unknown}; known keys are {sorted(fields)}."
            )
        return cls(**{key: value for key, value in values.items() if key in fields})

    @classmethod
    def from_json_file(cls, path: str) -> BertConfig:
        """Reads GB's `bert_config.json`, Hugging Face's `config.json` or our own."""
        with tf.io.gfile.GFile(path) as f:
            try:
                values = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg}).") from e
        return cls.from_dict(values, source=path)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: str) -> None:
        with tf.io.gfile.GFile(path, "w") as f:
            f.write(self.to_json_string())

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> BertConfig:
        """A preset of GB's published sizes (`tiny` ... `large`), with fields overridden."""
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
        layers, hidden, heads = PRESETS[name]
        values: dict[str, Any] = dict(
            num_hidden_layers=layers,
            hidden_size=hidden,
            num_attention_heads=heads,
            intermediate_size=4 * hidden,
        )
        values.update(overrides)
        return cls(**values)

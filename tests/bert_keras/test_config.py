import dataclasses
import json

import pytest

from bert_keras.config import PRESETS, BertConfig

# google-research/bert's bert_config.json for BERT-base uncased, as released.
GB_BASE_JSON = """{
  "attention_probs_dropout_prob": 0.1,
  "hidden_act": "gelu",
  "hidden_dropout_prob": 0.1,
  "hidden_size": 768,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "max_position_embeddings": 512,
  "num_attention_heads": 12,
  "num_hidden_layers": 12,
  "type_vocab_size": 2,
  "vocab_size": 30522
}
"""


def test_reads_google_bert_config(tmp_path):
    path = tmp_path / "bert_config.json"
    path.write_text(GB_BASE_JSON)
    config = BertConfig.from_json_file(str(path))
    assert dataclasses.asdict(config) == {
        **json.loads(GB_BASE_JSON),
        "layer_norm_epsilon": 1e-12,
        "norm_first": False,
    }
    assert config == BertConfig.from_preset("base")


def test_reads_hugging_face_config(tmp_path):
    values = json.loads(GB_BASE_JSON)
    values.update(
        architectures=["BertForMaskedLM"],
        model_type="bert",
        layer_norm_eps=1e-7,
        pad_token_id=0,
        position_embedding_type="absolute",
        transformers_version="4.40.0",
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    assert BertConfig.from_json_file(str(path)).layer_norm_epsilon == 1e-7


def test_json_round_trip_non_default(tmp_path):
    config = BertConfig(
        vocab_size=99,
        hidden_size=48,
        num_hidden_layers=3,
        num_attention_heads=6,
        intermediate_size=100,
        hidden_act="relu",
        hidden_dropout_prob=0.25,
        attention_probs_dropout_prob=0.3,
        max_position_embeddings=77,
        type_vocab_size=4,
        initializer_range=0.1,
        layer_norm_epsilon=1e-5,
        norm_first=True,
    )
    defaults = BertConfig()
    for field in dataclasses.fields(BertConfig):
        assert getattr(config, field.name) != getattr(defaults, field.name), field.name
    path = tmp_path / "bert_config.json"
    config.to_json_file(str(path))
    assert BertConfig.from_json_file(str(path)) == config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets(name):
    layers, hidden, heads = PRESETS[name]
    config = BertConfig.from_preset(name)
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (
        layers,
        hidden,
        heads,
    )
    assert config.intermediate_size == 4 * hidden
    assert config.max_position_embeddings == 512


def test_preset_sizes_are_googles():
    assert PRESETS == {
        "tiny": (2, 128, 2),
        "mini": (4, 256, 4),
        "small": (4, 512, 8),
        "medium": (8, 512, 8),
        "base": (12, 768, 12),
        "large": (24, 1024, 16),
    }
    assert BertConfig.from_preset("large", vocab_size=100).vocab_size == 100


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="Unknown preset 'huge'"):
        BertConfig.from_preset("huge")
    with pytest.raises(ValueError, match="not a multiple of num_attention_heads"):
        BertConfig(hidden_size=100, num_attention_heads=3)
    bad = tmp_path / "bad.json"
    bad.write_text('{"hidden_size": 8,\n "oops" }')
    with pytest.raises(ValueError, match=r"bad.json:2: not valid JSON"):
        BertConfig.from_json_file(str(bad))
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"hidden_size": 768, "hidden_sise": 3}')
    with pytest.raises(
        ValueError, match=r"unknown.json: unknown BERT config keys \['hidden_sise'\]"
    ):
        BertConfig.from_json_file(str(unknown))

"""The NumPy batch encoder writes the bytes protobuf writes, record by record."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from bert_keras import records
from bert_keras.example_wire import serialize_examples, varint_sizes


def _protobuf(features: dict[str, np.ndarray], row: int) -> bytes:
    example = tf.train.Example()
    for name, values in features.items():
        feature = example.features.feature[name]
        if values.dtype.kind == "f":
            feature.float_list.value.extend(values[row].tolist())
        else:
            feature.int64_list.value.extend(values[row].tolist())
    return example.SerializeToString(deterministic=True)


def test_varint_sizes_match_protobufs_boundaries():
    values = np.array([0, 1, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 2**63 - 1, -1, -(2**63)])
    assert varint_sizes(values).tolist() == [1, 1, 1, 2, 2, 3, 3, 4, 9, 10, 10]


@pytest.mark.parametrize("seed", range(6))
def test_random_features_are_byte_identical_to_protobuf(seed):
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(1, 40))
    features: dict[str, np.ndarray] = {}
    for f in range(int(rng.integers(1, 8))):
        width = int(rng.integers(0, 30))
        name = f"feature_{f}_" + "x" * int(rng.integers(0, 140))  # keys of 1- and 2-byte lengths
        if rng.random() < 0.3:
            features[name] = rng.normal(size=(rows, width)).astype(np.float32)
        else:
            bits = int(rng.integers(1, 64))
            values = rng.integers(0, 2**bits, (rows, width), dtype=np.int64)
            if rng.random() < 0.3:
                values = values - 2**bits // 2  # negatives: 10-byte varints
            features[name] = values
    encoded = serialize_examples(features)
    assert encoded == [_protobuf(features, row) for row in range(rows)]


def test_pretraining_records_equal_serialize_example():
    rng = np.random.default_rng(0)
    spec = records.RecordSpec(max_seq_length=512, max_predictions_per_seq=80)
    rows = 50
    lengths = rng.integers(3, 513, rows)
    real = np.arange(512) < lengths[:, None]
    features = {
        records.INPUT_IDS: rng.integers(0, 250_000, (rows, 512)) * real,
        records.INPUT_MASK: real.astype(np.int64),
        records.SEGMENT_IDS: (rng.random((rows, 512)) < 0.5) * real,
        records.MASKED_LM_POSITIONS: rng.integers(0, 512, (rows, 80)),
        records.MASKED_LM_IDS: rng.integers(0, 250_000, (rows, 80)),
        records.MASKED_LM_WEIGHTS: (rng.random((rows, 80)) < 0.7).astype(np.float32),
        records.NEXT_SENTENCE_LABELS: rng.integers(0, 2, (rows, 1)),
    }
    encoded = serialize_examples(features)
    for row, record in enumerate(encoded):
        one = {name: values[row].tolist() for name, values in features.items()}
        assert record == records.serialize_example(one, spec)
        parsed = records.parse_example(record)
        assert parsed[records.INPUT_IDS].tolist() == one[records.INPUT_IDS]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="different numbers of records"):
        serialize_examples({"a": np.zeros((2, 3), np.int64), "b": np.zeros((3, 3), np.int64)})
    with pytest.raises(ValueError, match="'a'"):
        serialize_examples({"a": np.zeros(3, np.int64)})
    with pytest.raises(TypeError, match="'s'"):
        serialize_examples({"s": np.array([["x"]])})
    assert serialize_examples({"a": np.zeros((0, 3), np.int64)}) == []

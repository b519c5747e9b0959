import dataclasses

import keras
import numpy as np
import pytest

from bert_keras.models import BertClassifier, BertEncoder, BertSpanLabeler, BertTokenClassifier
from tests.bert_keras.models.model_test_utils import (
    assert_config_complete,
    assert_keras_round_trip,
    encoder_inputs,
    tiny_config,
)


def make_encoder():
    return BertEncoder(**dataclasses.asdict(tiny_config()))


@pytest.mark.parametrize("num_classes", [1, 3])
def test_classifier(num_classes, tmp_path):
    model = BertClassifier(
        make_encoder(), num_classes=num_classes, dropout_rate=0.3, initializer_range=0.1
    )
    inputs = encoder_inputs()
    logits = model(inputs)
    assert logits.shape == (3, num_classes) and logits.dtype == "float32"
    assert_config_complete(model)
    restored = assert_keras_round_trip(model, inputs, tmp_path)
    assert restored.dropout_rate == 0.3 and restored.initializer_range == 0.1


def test_classifier_trains():
    keras.utils.set_random_seed(0)
    model = BertClassifier(make_encoder(), num_classes=2, dropout_rate=0.0)
    inputs = encoder_inputs(batch=8)
    labels = np.arange(8) % 2
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(inputs, labels, epochs=15, batch_size=8, verbose=0).history
    assert history["accuracy"][-1] == 1.0


def test_token_classifier(tmp_path):
    model = BertTokenClassifier(
        make_encoder(), num_classes=5, dropout_rate=0.2, initializer_range=0.1
    )
    inputs = encoder_inputs()
    logits = model(inputs)
    assert logits.shape == (3, 24, 5) and logits.dtype == "float32"
    assert_config_complete(model)
    assert_keras_round_trip(model, inputs, tmp_path)


def test_span_labeler(tmp_path):
    model = BertSpanLabeler(make_encoder(), initializer_range=0.1)
    inputs = encoder_inputs()
    outputs = model(inputs)
    assert set(outputs) == {"start_logits", "end_logits"}
    assert outputs["start_logits"].shape == (3, 24) and outputs["end_logits"].dtype == "float32"
    assert_config_complete(model)
    assert_keras_round_trip(model, inputs, tmp_path)


def test_bad_num_classes():
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        BertClassifier(make_encoder(), num_classes=0)

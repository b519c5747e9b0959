"""The serving modules in this process (no SavedModel written): outputs, paths, errors."""

import numpy as np
import pytest
import tensorflow as tf

from bert_keras import records
from bert_keras.models import BertClassifier
from bert_keras.serving import ClassifierModule, EncoderModule, FillMaskModule
from tests.bert_keras.serving.serving_test_util import (
    MAX_SEQ_LENGTH,
    VOCAB,
    make_preprocessor,
    tiny_encoder,
)

TEXTS = ["hello world", "The movie was great fun!", ""]


@pytest.fixture(scope="module")
def preprocessor():
    return make_preprocessor()


def _serialize(inputs):
    spec = records.RecordSpec(MAX_SEQ_LENGTH, has_masked_lm=False, has_next_sentence=False)
    features = {
        records.INPUT_IDS: inputs["input_word_ids"],
        records.INPUT_MASK: inputs["input_mask"],
        records.SEGMENT_IDS: inputs["input_type_ids"],
    }
    batch = len(features[records.INPUT_IDS])
    return tf.constant(
        [
            records.serialize_example({k: v[i].tolist() for k, v in features.items()}, spec)
            for i in range(batch)
        ]
    )


def test_text_tokens_and_examples_paths_agree(preprocessor):
    classifier = BertClassifier(tiny_encoder(seed=7), num_classes=2)
    module = ClassifierModule(classifier, preprocessor, labels=["no", "yes"])
    from_text = module.from_text(tf.constant(TEXTS))
    inputs = {k: v.numpy() for k, v in preprocessor(tf.constant(TEXTS)).items()}
    from_tokens = module.from_tokens(**{k: tf.constant(v) for k, v in inputs.items()})
    from_examples = module.from_examples(_serialize(inputs))
    expected = tf.nn.softmax(classifier(inputs, training=False)).numpy()
    for outputs in (from_text, from_tokens, from_examples):
        assert sorted(outputs) == ["label_ids", "labels", "logits", "probabilities"]
        np.testing.assert_allclose(outputs["probabilities"], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(outputs["label_ids"], expected.argmax(-1))


def test_regression_gives_scores(preprocessor):
    regressor = BertClassifier(tiny_encoder(seed=8), num_classes=1)
    module = ClassifierModule(regressor, preprocessor, labels=[])
    outputs = module.from_text(tf.constant(TEXTS))
    assert sorted(outputs) == ["scores"]
    expected = regressor(preprocessor(tf.constant(TEXTS)), training=False)[:, 0]
    np.testing.assert_allclose(outputs["scores"], expected, rtol=1e-5, atol=1e-6)


def test_label_list_must_fit_the_model(preprocessor):
    with pytest.raises(ValueError, match="3 classes but 2 labels"):
        ClassifierModule(BertClassifier(tiny_encoder(), num_classes=3), preprocessor, ["a", "b"])
    with pytest.raises(ValueError, match="regression model"):
        ClassifierModule(BertClassifier(tiny_encoder(), num_classes=1), preprocessor, ["a"])


def test_encoder_without_preprocessor_needs_a_length():
    with pytest.raises(ValueError, match="max_seq_length"):
        EncoderModule(tiny_encoder())


def test_each_literal_mask_is_one_mask_token(preprocessor):
    from bert_keras.models import BertPretrainer

    module = FillMaskModule(BertPretrainer(tiny_encoder()), preprocessor, top_k=2, max_masks=2)
    pieces = module._tokenize_with_masks(
        tf.constant(["The [MASK] movie[MASK]", "[MASK]", "", "fun"])
    )
    ids = [VOCAB.index(t) for t in ("the", "[MASK]", "movie", "[MASK]")]
    assert pieces.to_list() == [ids, [VOCAB.index("[MASK]")], [], [VOCAB.index("fun")]]
    outputs = module.from_text(tf.constant(["[MASK] [MASK] [MASK]", "fun [MASK]"]))
    # At most max_masks per sequence, the first ones.
    np.testing.assert_array_equal(outputs["mask_positions"], [[1, 2], [2, -1]])
    assert outputs["top_k_tokens"].shape == (2, 2, 2)

"""The exported SavedModels, loaded the way TF Serving loads them: in a fresh process that
imports only tensorflow and tensorflow_text. Their answers are compared with the Keras
models' in this process."""

import numpy as np
import pytest
import tensorflow as tf

from bert_keras.models import BertClassifier, BertPretrainer
from bert_keras.serving import ClassifierModule, EncoderModule, FillMaskModule, PreprocessorModule
from tests.bert_keras.serving import fresh_process_util as fresh
from tests.bert_keras.serving.serving_test_util import (
    MAX_SEQ_LENGTH,
    make_preprocessor,
    tiny_encoder,
)

pytestmark = pytest.mark.slow

LABELS = ["negative", "neutral", "positive"]
LONG_SENTENCE = "the movie was great fun and the actors play it un ##believ " * 4
TEXTS = [
    "hello world",
    "The movie was GREAT fun!",
    LONG_SENTENCE,  # Longer than MAX_SEQ_LENGTH: truncated.
    "",
    "the " * 25_000,  # 100,000 characters.
    "a" * 100_000,  # One 100,000-character word: [UNK].
    b"bad \xff\xfe movie \xc3",  # Invalid UTF-8: the bad bytes are dropped...
    "bad  movie ",  # ... so it reads as this.
]
PAIRS_A = ["hello world", "", LONG_SENTENCE, "the plot"]
PAIRS_B = ["the movie", "dull", "a", LONG_SENTENCE]
FILL_MASK_TEXTS = ["the man went to the [MASK] .", "no mask here", "[MASK] [MASK]", ""]


def _probabilities(classifier, preprocessor, texts):
    """The Keras model's answer: eager preprocessing and classifier, softmax."""
    inputs = preprocessor(
        [tf.constant(t) for t in texts] if len(texts) == 2 else tf.constant(texts[0])
    )
    return tf.nn.softmax(classifier(inputs, training=False), axis=-1).numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved_models")
    preprocessor = make_preprocessor()
    models = {
        "classifier": BertClassifier(tiny_encoder(seed=1), num_classes=3),
        "pair_classifier": BertClassifier(tiny_encoder(seed=2), num_classes=2),
        "encoder": tiny_encoder(seed=3),
        "pretrainer": BertPretrainer(tiny_encoder(seed=4)),
    }
    modules = {
        "classifier": ClassifierModule(models["classifier"], preprocessor, labels=LABELS),
        "pair_classifier": ClassifierModule(
            models["pair_classifier"], preprocessor, labels=["no", "yes"], num_segments=2
        ),
        "encoder": EncoderModule(models["encoder"], preprocessor),
        "encoder_tokens": EncoderModule(models["encoder"], max_seq_length=MAX_SEQ_LENGTH),
        "preprocessor": PreprocessorModule(preprocessor),
        "fill_mask": FillMaskModule(models["pretrainer"], preprocessor, top_k=4),
    }
    paths = {}
    for name, module in modules.items():
        paths[name] = str(root / name)
        module.save(paths[name])
    return {"paths": paths, "models": models, "preprocessor": preprocessor, "root": root}


def _call(path, signature, **inputs):
    return {"saved_model": path, "signature": signature, "inputs": inputs}


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    """Every request of this file, answered by one fresh process."""
    paths = exported["paths"]
    requests = {
        "texts": _call(paths["classifier"], "serving_default", text=fresh.strings(TEXTS)),
        "empty_batch": _call(paths["classifier"], "serving_default", text=fresh.strings([])),
        "pairs": _call(
            paths["pair_classifier"],
            "serving_default",
            text_a=fresh.strings(PAIRS_A),
            text_b=fresh.strings(PAIRS_B),
        ),
        "pairs_empty_batch": _call(
            paths["pair_classifier"],
            "serving_default",
            text_a=fresh.strings([]),
            text_b=fresh.strings([]),
        ),
        "pairs_mismatched": _call(
            paths["pair_classifier"],
            "serving_default",
            text_a=fresh.strings(["a", "b"]),
            text_b=fresh.strings(["a"]),
        ),
        "encoder_text": _call(paths["encoder"], "serving_default", text=fresh.strings(TEXTS)),
        "preprocessed": _call(paths["preprocessor"], "serving_default", text=fresh.strings(TEXTS)),
        "preprocessed_pairs": _call(
            paths["preprocessor"],
            "pair",
            text_a=fresh.strings(PAIRS_A),
            text_b=fresh.strings(PAIRS_B),
        ),
        "fill_mask": _call(
            paths["fill_mask"], "serving_default", text=fresh.strings(FILL_MASK_TEXTS)
        ),
        "fill_mask_empty_batch": _call(
            paths["fill_mask"], "serving_default", text=fresh.strings([])
        ),
        "bad_tokens": _call(
            paths["classifier"],
            "from_tokens",
            input_word_ids=np.array([[2, 10_000, 3]], np.int32),
            input_mask=np.ones([1, 3], np.int32),
            input_type_ids=np.zeros([1, 3], np.int32),
        ),
    }
    # The same requests as TF Serving runs them: the signature_def in a session.
    for name in ("texts", "pairs", "encoder_text", "preprocessed", "fill_mask"):
        requests[f"{name}_in_session"] = dict(requests[name], session=True)
    for i, text in enumerate(TEXTS[:3]):  # Each alone: the answer must not depend on the batch.
        requests[f"alone_{i}"] = _call(
            paths["classifier"], "serving_default", text=fresh.strings([text])
        )
    response = fresh.run_signatures(list(requests.values()), tmp_path_factory.mktemp("fresh"))
    response["by_name"] = dict(zip(requests, response["results"], strict=True))
    return response


def _ok(result):
    assert "error" not in result, result.get("message")
    return result


def test_loads_without_project_code(served, exported):
    assert served["attempted_imports"] == []
    assert served["loaded_forbidden"] == []
    paths = exported["paths"]
    for name in ("classifier", "pair_classifier", "encoder", "fill_mask"):
        assert served["signatures"][paths[name]] == [
            "from_examples",
            "from_tokens",
            "serving_default",
        ]
    assert served["signatures"][paths["preprocessor"]] == ["pair", "serving_default"]


def test_classifier_answers_equal_keras(served, exported):
    result = _ok(served["by_name"]["texts"])
    expected = _probabilities(exported["models"]["classifier"], exported["preprocessor"], [TEXTS])
    np.testing.assert_allclose(result["probabilities"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result["label_ids"], expected.argmax(-1))
    assert [label.decode() for label in result["labels"]] == [
        LABELS[i] for i in expected.argmax(-1)
    ]
    np.testing.assert_allclose(result["probabilities"].sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ["texts", "pairs", "encoder_text", "preprocessed", "fill_mask"])
def test_signature_def_in_a_session_gives_the_same_answers(served, name):
    """TF Serving runs the signature_def graph in a session (restoring the variables from
    the checkpoint by the graph's names), not the TF2 object graph."""
    in_session = _ok(served["by_name"][f"{name}_in_session"])
    loaded = _ok(served["by_name"][name])
    assert sorted(in_session) == sorted(loaded)
    for key, value in loaded.items():
        if value.dtype == object:
            np.testing.assert_array_equal(in_session[key], value)
        else:
            np.testing.assert_allclose(in_session[key], value, rtol=1e-5, atol=1e-6)


def test_robust_inputs_get_defined_answers(served):
    result = _ok(served["by_name"]["texts"])
    assert result["probabilities"].shape == (len(TEXTS), 3)
    assert np.isfinite(result["probabilities"]).all()
    # Invalid UTF-8 bytes are dropped, as google-research/bert's decode("utf-8", "ignore").
    np.testing.assert_allclose(result["probabilities"][6], result["probabilities"][7], atol=1e-6)
    empty = _ok(served["by_name"]["empty_batch"])
    assert empty["probabilities"].shape == (0, 3)
    assert empty["label_ids"].shape == (0,) and empty["labels"].shape == (0,)


def test_answers_do_not_depend_on_the_batch(served):
    batch = _ok(served["by_name"]["texts"])["probabilities"]
    for i in range(3):
        alone = _ok(served["by_name"][f"alone_{i}"])["probabilities"]
        np.testing.assert_allclose(alone[0], batch[i], rtol=1e-5, atol=1e-6)


def test_pair_classifier(served, exported):
    result = _ok(served["by_name"]["pairs"])
    expected = _probabilities(
        exported["models"]["pair_classifier"], exported["preprocessor"], [PAIRS_A, PAIRS_B]
    )
    np.testing.assert_allclose(result["probabilities"], expected, rtol=1e-5, atol=1e-6)
    assert _ok(served["by_name"]["pairs_empty_batch"])["probabilities"].shape == (0, 2)
    mismatched = served["by_name"]["pairs_mismatched"]
    assert mismatched["error"] == "InvalidArgumentError"
    assert "text_a and text_b differ in batch size" in mismatched["message"]


def test_bad_token_request_is_named(served):
    result = served["by_name"]["bad_tokens"]
    assert result["error"] == "InvalidArgumentError"
    assert "input_word_ids must be < vocab_size" in result["message"]


def test_preprocessor_plus_encoder_equals_all_in_one(served, exported):
    preprocessed = _ok(served["by_name"]["preprocessed"])
    expected_inputs = exported["preprocessor"](tf.constant(TEXTS))
    for name, value in expected_inputs.items():
        np.testing.assert_array_equal(preprocessed[name], value.numpy())
    pairs = _ok(served["by_name"]["preprocessed_pairs"])
    expected_pairs = exported["preprocessor"]([tf.constant(PAIRS_A), tf.constant(PAIRS_B)])
    for name, value in expected_pairs.items():
        np.testing.assert_array_equal(pairs[name], value.numpy())
    # TF Hub's preprocessor functions: tokenize, then bert_pack_inputs.
    loaded_preprocessor = tf.saved_model.load(exported["paths"]["preprocessor"])
    segments = [loaded_preprocessor.tokenize(tf.constant(t)) for t in (PAIRS_A, PAIRS_B)]
    packed = loaded_preprocessor.bert_pack_inputs(segments)
    for name, value in expected_pairs.items():
        np.testing.assert_array_equal(packed[name], value.numpy())
    # TF Hub style: the tokens-only encoder on the preprocessor's output.
    encoder = tf.saved_model.load(exported["paths"]["encoder_tokens"])
    combined = encoder({name: tf.constant(preprocessed[name]) for name in expected_inputs})
    all_in_one = _ok(served["by_name"]["encoder_text"])
    keras_outputs = exported["models"]["encoder"](expected_inputs, training=False)
    for name in ("pooled_output", "sequence_output"):
        np.testing.assert_allclose(combined[name], all_in_one[name], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(all_in_one[name], keras_outputs[name], rtol=1e-5, atol=1e-5)
    assert len(combined["encoder_outputs"]) == exported["models"]["encoder"].num_hidden_layers


def test_fill_mask_equals_keras(served, exported):
    result = _ok(served["by_name"]["fill_mask"])
    preprocessor = exported["preprocessor"]
    tokenizer = preprocessor.tokenizer
    # "[MASK]" is one mask token, whatever the lower-casing does to the rest.
    inputs = preprocessor(tf.constant(["the man went to the x ."]))
    position = 6  # [CLS] the man went to the [MASK]
    assert inputs["input_word_ids"][0, position] == tokenizer.token_to_id("x")
    np.testing.assert_array_equal(result["mask_positions"], [[6, -1], [-1, -1], [1, 2], [-1, -1]])
    word_ids = inputs["input_word_ids"].numpy()
    word_ids[0, position] = tokenizer.mask_id
    keras_inputs = dict(inputs, input_word_ids=tf.constant(word_ids))
    keras_inputs["masked_lm_positions"] = tf.constant([[position]], tf.int32)
    logits = exported["models"]["pretrainer"](keras_inputs, training=False)["mlm_logits"][0, 0]
    probabilities = tf.nn.softmax(logits).numpy()
    top = np.argsort(-probabilities)[:4]
    np.testing.assert_array_equal(result["top_k_ids"][0, 0], top)
    np.testing.assert_allclose(result["top_k_scores"][0, 0], probabilities[top], rtol=1e-5)
    assert [t.decode() for t in result["top_k_tokens"][0, 0]] == [
        tokenizer.vocabulary[i] for i in top
    ]
    # Empty slots are blank.
    assert (result["top_k_ids"][1] == -1).all() and (result["top_k_scores"][1] == 0).all()
    assert result["top_k_tokens"][3, 0, 0] == b""
    empty = _ok(served["by_name"]["fill_mask_empty_batch"])
    assert empty["top_k_tokens"].shape == (0, 0, 4)


def test_saved_model_cli_lists_signatures(exported, tmp_path):
    shown = fresh.saved_model_cli_show_all(exported["paths"]["classifier"], tmp_path)
    for signature in ("serving_default", "from_tokens", "from_examples"):
        assert f"signature_def['{signature}']" in shown
    flat = " ".join(shown.split())
    for expected in (
        "inputs['text'] tensor_info: dtype: DT_STRING shape: (-1)",
        "inputs['input_word_ids'] tensor_info: dtype: DT_INT32 shape: (-1, -1)",
        "inputs['examples'] tensor_info: dtype: DT_STRING shape: (-1)",
        "outputs['probabilities'] tensor_info: dtype: DT_FLOAT shape: (-1, 3)",
        "outputs['label_ids'] tensor_info: dtype: DT_INT32 shape: (-1)",
        "outputs['labels'] tensor_info: dtype: DT_STRING shape: (-1)",
    ):
        assert expected in flat, shown

"""The SQuAD SavedModel: raw question + passage in, answer out, loaded as TF Serving
loads it (a fresh process importing only tensorflow and tensorflow_text); its answers
equal the Python pipeline's (features -> Keras model -> n-best decoding)."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest

from bert_keras import checkpoints
from bert_keras.config import BertConfig
from bert_keras.models import BertEncoder, BertSpanLabeler
from bert_keras.serving import exporter
from bert_keras.serving.squad_module import SquadModule
from bert_keras.squad.features import convert_examples_to_features
from bert_keras.squad.postprocess import predict_answers
from bert_keras.squad.reader import parse_squad
from bert_keras.squad.train import SquadOptions, task_info
from tests.bert_keras.serving import fresh_process_util as fresh
from tests.bert_keras.squad.squad_test_util import VOCAB, qa, squad_json, tokenizer, write_vocab

pytestmark = pytest.mark.slow

T, STRIDE, MAX_QUERY, MAX_ANSWER = 24, 5, 6, 4
CONFIG = BertConfig(
    vocab_size=len(VOCAB),
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=48,
)
QUESTIONS = [
    "where was he born?",
    "who built the bridge?",
    "where is the city near the river? " * 3,  # Longer than max_query_length: cut.
    "",
    "what?",
]
CONTEXTS = [
    "Émile, the café owner, was born in (Paris), in 1990. He lived near the river.",
    "The bridge of Rome was built in 1850 by Émile; " * 4,  # Several windows.
    "the city near the river",
    "an empty question",
    "",  # Empty passage: no span.
]
LONG_CONTEXT = "the city " * 11_112  # 100,008 characters: thousands of windows.


def _span_labeler(seed):
    keras.utils.set_random_seed(seed)
    return BertSpanLabeler(BertEncoder(**dataclasses.asdict(CONFIG)))


def _python_answers(model, v2, threshold=0.0):
    """The Python pipeline with n_best_size = T: the graph's exact maximum."""
    examples = parse_squad(
        squad_json(
            [(c, [qa(str(i), q)]) for i, (q, c) in enumerate(zip(QUESTIONS, CONTEXTS, strict=True))]
        ),
        "mem.json",
        v2,
    )[0]
    features, _ = convert_examples_to_features(examples, tokenizer(), T, STRIDE, MAX_QUERY, False)
    logits = model.predict(features.model_inputs(), batch_size=512, verbose=0)
    predictions = predict_answers(
        examples,
        features,
        logits["start_logits"],
        logits["end_logits"],
        n_best_size=T,
        max_answer_length=MAX_ANSWER,
        version_2_with_negative=v2,
        null_score_diff_threshold=threshold,
    )
    best = [predictions.nbest[str(i)] for i in range(len(QUESTIONS))]
    scores = [
        max((x["start_logit"] + x["end_logit"] for x in n if x["text"]), default=-np.inf)
        for n in best
    ]
    return predictions, np.array(scores, np.float32), features, logits


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("squad_saved_models")
    v1 = _span_labeler(1)
    SquadModule(v1, tokenizer(), T, STRIDE, MAX_QUERY, MAX_ANSWER).save(str(root / "v1"))
    # v2 through the exporter, from a checkpoint laid out as a SQuAD run's final/.
    v2 = _span_labeler(2)
    final = root / "run" / "final"
    checkpoints.save_checkpoint(v2.encoder, str(final), config=CONFIG, model=v2)
    write_vocab(final / "vocab.txt")
    options = SquadOptions(
        task="squad_v2",
        output_dir=str(root / "run"),
        vocab_file="vocab.txt",
        max_seq_length=T,
        doc_stride=STRIDE,
        max_query_length=MAX_QUERY,
        max_answer_length=MAX_ANSWER,
        null_score_diff_threshold=0.01,
    )
    (final / "task_info.json").write_text(json.dumps(task_info(options)), "utf-8")
    v2_path = exporter.export("squad", str(root / "serving"), checkpoint=str(final))
    assert v2_path == str(root / "serving" / "bert_squad" / "1")
    return {"v1": str(root / "v1"), "v2": v2_path, "models": {"v1": v1, "v2": v2}, "root": root}


@pytest.fixture(scope="module")
def served(exported):
    questions, contexts = fresh.strings(QUESTIONS), fresh.strings(CONTEXTS)
    features, _ = convert_examples_to_features(
        parse_squad(squad_json([(CONTEXTS[0], [qa("0", QUESTIONS[0])])]), "m", False)[0],
        tokenizer(),
        T,
        STRIDE,
        MAX_QUERY,
        False,
    )
    calls = {
        "v1": ("v1", "serving_default", {"question": questions, "context": contexts}),
        "v2": ("v2", "serving_default", {"question": questions, "context": contexts}),
        "empty_batch": (
            "v1",
            "serving_default",
            {"question": fresh.strings([]), "context": fresh.strings([])},
        ),
        "mismatch": (
            "v1",
            "serving_default",
            {"question": fresh.strings(["a", "b"]), "context": fresh.strings(["a"])},
        ),
        "invalid_utf8": (
            "v1",
            "serving_default",
            {
                "question": fresh.strings([b"where \xff born?"]),
                "context": fresh.strings([b"he was born in \xc3 paris \xfe near rome."]),
            },
        ),
        "long": (
            "v1",
            "serving_default",
            {"question": fresh.strings(["where?"]), "context": fresh.strings([LONG_CONTEXT])},
        ),
        "tokens": ("v1", "from_tokens", features.model_inputs()),
    }
    requests = [
        {"saved_model": exported[model], "signature": sig, "inputs": inputs}
        for model, sig, inputs in calls.values()
    ]
    response = fresh.run_signatures(requests, exported["root"] / "fresh", timeout=600)
    assert not response["attempted_imports"] and not response["loaded_forbidden"]
    for path in (exported["v1"], exported["v2"]):
        assert response["signatures"][path] == ["from_examples", "from_tokens", "serving_default"]
    return dict(zip(calls, response["results"], strict=True)), features


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_answers_equal_python_pipeline(exported, served, version):
    results, _ = served
    out = results[version]
    v2 = version == "v2"
    predictions, scores, _, _ = _python_answers(exported["models"][version], v2, 0.01)
    answers = [a.decode("utf-8") for a in out["answer"]]
    assert answers == [predictions.answers[str(i)] for i in range(len(QUESTIONS))]
    finite = np.isfinite(scores)
    np.testing.assert_allclose(out["score"][finite], scores[finite], rtol=1e-4, atol=1e-4)
    assert not finite[4] and out["score"][4] == -np.inf and not out["has_answer"][4]
    if v2:
        odds = np.array([predictions.null_odds[str(i)] for i in range(len(QUESTIONS))])
        np.testing.assert_allclose(out["null_odds"][finite], odds[finite], rtol=1e-4, atol=1e-4)
        assert (out["has_answer"] == (np.array(answers) != "")).all()
    # Byte offsets cut the answer out of the original passage.
    for i, context in enumerate(CONTEXTS):
        if out["has_answer"][i]:
            raw = context.encode("utf-8")[out["answer_start"][i] : out["answer_end"][i]]
            assert raw.decode("utf-8") == answers[i]


def test_robust_inputs(served):
    results, _ = served
    assert all(v.shape == (0,) for v in results["empty_batch"].values())
    assert results["mismatch"]["error"] == "InvalidArgumentError"
    assert "differ in batch size" in results["mismatch"]["message"]
    bad = results["invalid_utf8"]
    assert bad["answer"][0] in b"he was born in \xc3 paris \xfe near rome."
    long = results["long"]
    assert long["has_answer"][0] and np.isfinite(long["score"][0])
    start, end = long["answer_start"][0], long["answer_end"][0]
    assert long["answer"][0] == LONG_CONTEXT.encode()[start:end] and 0 < end - start < 40


def test_token_signature_equals_keras(exported, served):
    results, features = served
    logits = exported["models"]["v1"].predict(features.model_inputs(), verbose=0)
    for name in ("start_logits", "end_logits"):
        np.testing.assert_allclose(results["tokens"][name], logits[name], rtol=1e-4, atol=1e-5)

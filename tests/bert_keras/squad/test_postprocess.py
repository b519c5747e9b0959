"""n-best decoding across windows back to the original passage text, v2 null scores and
the official output files."""

import json
import math

import numpy as np
import pytest

from bert_keras.squad.features import convert_examples_to_features
from bert_keras.squad.postprocess import predict_answers, write_predictions
from bert_keras.squad.reader import parse_squad
from tests.bert_keras.squad.squad_test_util import qa, squad_json, tokenizer

CONTEXT = "Émile, the café owner, was born in (Paris), in 1990. He lived near the river."


@pytest.fixture(scope="module")
def setup():
    examples = parse_squad(
        squad_json([(CONTEXT, [qa("q", "Where?", [("Paris", 36)])]), ("", [qa("e", "Who?")])]),
        "mem.json",
        True,
    )[0]
    # Windows of 10 passage pieces with stride 4: pieces appear in several windows.
    features, _ = convert_examples_to_features(examples, tokenizer(), 14, 4, 2, False)
    return examples, features


def _position(features, examples, row, text, occurrence=0):
    """Position in window `row` of the piece spanning exactly `text` in the passage."""
    context = examples[features.example_index[row]].context
    hits = [
        p
        for p in range(features.char_starts.shape[1])
        if features.char_starts[row, p] >= 0
        and context[features.char_starts[row, p] : features.char_ends[row, p]] == text
    ]
    return hits[occurrence]


def _rows(features, example_index, text, examples, max_context):
    rows = []
    for r in np.nonzero(features.example_index == example_index)[0]:
        try:
            p = _position(features, examples, r, text)
        except IndexError:
            continue
        if bool(features.is_max_context[r, p]) == max_context:
            rows.append((int(r), p))
    return rows


def test_best_span_across_windows_in_original_text(setup):
    examples, features = setup
    n, t = features.input_word_ids.shape
    start = np.full([n, t], -100.0, np.float32)
    end = np.full([n, t], -100.0, np.float32)
    (row, p), *_ = _rows(features, 0, "Paris", examples, max_context=True)
    start[row, p], end[row, p] = 5.0, 4.0
    # Higher but invalid: the same piece where it is not max-context...
    (other, q), *_ = _rows(features, 0, "Paris", examples, max_context=False)
    start[other, q], end[other, q] = 9.0, 9.0
    # ... the question ([CLS] and question pieces), and an end before the start.
    start[row, 1], end[row, 1] = 20.0, 20.0
    end[row, p - 1] = 30.0
    # "café owner": start at café, end at owner, score 3 + 2.5 (runner-up).
    (crow, c), *_ = _rows(features, 0, "café", examples, max_context=True)
    start[crow, c] = 3.0
    end[crow, _position(features, examples, crow, "owner")] = 2.5
    predictions = predict_answers(examples, features, start, end, n_best_size=20)
    assert predictions.answers == {"q": "Paris", "e": ""}
    nbest = predictions.nbest["q"]
    assert [x["text"] for x in nbest[:2]] == ["Paris", "café owner"]
    assert nbest[0]["start_logit"] == 5.0 and nbest[0]["end_logit"] == 4.0
    assert math.isclose(sum(x["probability"] for x in nbest), 1.0, rel_tol=1e-6)
    # Softmax over start + end: the top two are 9 and 5.5.
    assert math.isclose(
        nbest[0]["probability"] / nbest[1]["probability"], math.exp(3.5), rel_tol=1e-5
    )
    # max_answer_length=1 drops the two-piece answer "café owner"
    short = predict_answers(examples, features, start, end, max_answer_length=1)
    assert "café owner" not in [x["text"] for x in short.nbest["q"]]
    assert predictions.null_odds is None


def test_v2_null_score_and_threshold(setup):
    examples, features = setup
    n, t = features.input_word_ids.shape
    start = np.zeros([n, t], np.float32)
    end = np.zeros([n, t], np.float32)
    (row, p), *_ = _rows(features, 0, "Paris", examples, max_context=True)
    start[row, p], end[row, p] = 2.0, 2.0
    rows_q = np.nonzero(features.example_index == 0)[0]
    start[rows_q, 0] = [3.0 + i for i in range(len(rows_q))]  # Null = min over windows = 3+0.
    end[rows_q, 0] = 1.0
    out = predict_answers(examples, features, start, end, version_2_with_negative=True)
    # null 4.0 - best 4.0 = 0.0, not > 0.0: the span wins.
    assert out.null_odds["q"] == 0.0 and out.answers["q"] == "Paris"
    assert out.nbest["q"][0]["text"] in ("Paris", "")
    assert "" in [x["text"] for x in out.nbest["q"]]
    out = predict_answers(
        examples, features, start, end, version_2_with_negative=True, null_score_diff_threshold=-0.5
    )
    assert out.answers["q"] == ""
    # The empty passage has no span: "" with infinite null odds.
    assert out.answers["e"] == "" and out.null_odds["e"] == math.inf


def test_official_files(setup, tmp_path):
    examples, features = setup
    zeros = np.zeros(features.input_word_ids.shape, np.float32)
    out = predict_answers(examples, features, zeros, zeros, version_2_with_negative=True)
    paths = write_predictions(out, str(tmp_path))
    assert sorted(paths) == ["nbest_predictions", "null_odds", "predictions"]
    with open(paths["predictions"], encoding="utf-8") as f:
        assert json.load(f) == out.answers
    with open(paths["null_odds"], encoding="utf-8") as f:
        assert set(json.load(f)) == {"q", "e"}
    with open(paths["nbest_predictions"], encoding="utf-8") as f:
        entry = json.load(f)["q"][0]
    assert sorted(entry) == ["end_logit", "probability", "start_logit", "text"]
    with pytest.raises(ValueError, match="do not match"):
        predict_answers(examples, features, zeros[:1], zeros[:1])

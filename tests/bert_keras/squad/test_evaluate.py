"""SQuAD metrics against hand-computed cases."""

import json

import pytest

from bert_keras.squad.evaluate import evaluate, evaluate_files, exact_match, f1, normalize_answer
from tests.bert_keras.squad.squad_test_util import qa, write_squad


def test_normalisation_and_single_scores():
    assert normalize_answer("The  Café, (Paris)!") == "café paris"
    assert normalize_answer("an apple\tand THE\npear.") == "apple and pear"
    assert exact_match("The Eiffel Tower", "eiffel tower!") == 1
    assert exact_match("Paris", "Paris, France") == 0
    # gold {cat, sat}, prediction {cat, sat, on, mat}: P = 2/4, R = 2/2, F1 = 2/3.
    assert f1("the cat sat", "cat sat on mat") == pytest.approx(2 / 3)
    # Repeated tokens count once per occurrence: common {y: 2}; P = R = 2/3.
    assert f1("x y y", "y y y") == pytest.approx(2 / 3)
    assert f1("", "") == 1.0 and f1("", "London") == 0.0 and f1("Paris", "") == 0.0
    assert f1("the", "a") == 1.0  # Both normalise to nothing.


GOLD = {
    "a": ["The Eiffel Tower", "Eiffel tower"],  # "eiffel tower!": EM 1, F1 1
    "b": ["Paris, France"],  # "in Paris": EM 0, F1 0.5
    "c": [],  # "": EM 1, F1 1
    "d": [],  # "London": EM 0, F1 0
}
PREDICTIONS = {"a": "eiffel tower!", "b": "in Paris", "c": "", "d": "London"}
NULL_ODDS = {"a": -2.0, "b": -3.0, "c": 3.0, "d": -1.0}


def test_breakdown_and_best_thresholds():
    results = evaluate(GOLD, PREDICTIONS, NULL_ODDS)
    assert results["exact"] == pytest.approx(50.0)  # (1 + 0 + 1 + 0) / 4
    assert results["f1"] == pytest.approx(62.5)  # (1 + .5 + 1 + 0) / 4
    assert results["HasAns_exact"] == pytest.approx(50.0)
    assert results["HasAns_f1"] == pytest.approx(75.0)
    assert results["NoAns_exact"] == results["NoAns_f1"] == pytest.approx(50.0)
    assert (results["total"], results["HasAns_total"], results["NoAns_total"]) == (4, 2, 2)
    # Sweep in odds order b, a, d, c from 2 (all null). EM: +0, +1 (best 3 at -2), -1, 0.
    assert results["best_exact"] == pytest.approx(75.0)
    assert results["best_exact_thresh"] == -2.0
    # F1: +.5 (2.5 at -3), +1 (3.5 at -2), -1, 0.
    assert results["best_f1"] == pytest.approx(87.5)
    assert results["best_f1_thresh"] == -2.0
    assert results["missing_predictions"] == 0


def test_missing_prediction_scores_zero_and_v1_has_no_noans():
    results = evaluate({"a": ["Paris"], "b": ["Rome"]}, {"a": "paris"})
    assert results["exact"] == results["f1"] == pytest.approx(50.0)
    assert results["missing_predictions"] == 1
    assert "NoAns_total" not in results and "best_f1" not in results


def test_evaluate_files(tmp_path):
    data = write_squad(
        tmp_path / "dev.json",
        [("Paris is big.", [qa("a", "?", [("Paris", 0)]), qa("c", "?", [], True)])],
        version="v2.0",
    )
    predictions = tmp_path / "predictions.json"
    predictions.write_text(json.dumps({"a": "Paris", "c": "big"}), encoding="utf-8")
    results = evaluate_files(data, str(predictions))
    assert results["HasAns_exact"] == 100.0 and results["NoAns_exact"] == 0.0

"""SQuAD's official metrics (the v2.0 evaluation script's definitions, which agree with
v1.1's on v1.1 data): exact match and token F1 after normalisation (lower case, remove
punctuation, remove the articles a/an/the, collapse whitespace), the maximum over the gold
answers; an unanswerable question's only gold answer is "". Reported in percent, overall
and for HasAns / NoAns questions; with null odds also the best threshold for each metric
(`best_exact`, `best_exact_thresh`, `best_f1`, `best_f1_thresh`).

A question without a prediction scores 0 and is counted (`missing_predictions`).
"""

from __future__ import annotations

import collections
import json
import re
import string

import tensorflow as tf

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, drop ASCII punctuation, drop articles, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def exact_match(gold: str, prediction: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(prediction))


def f1(gold: str, prediction: str) -> float:
    gold_tokens, pred_tokens = answer_tokens(gold), answer_tokens(prediction)
    if not gold_tokens or not pred_tokens:
        # An unanswerable question: F1 is 1 if both are empty, else 0.
        return float(gold_tokens == pred_tokens)
    common = collections.Counter(gold_tokens) & collections.Counter(pred_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _golds(answers: list[str]) -> list[str]:
    # The official script drops gold answers that normalise to nothing.
    kept = [a for a in answers if normalize_answer(a)]
    return kept or [""]


def raw_scores(gold: dict[str, list[str]], predictions: dict[str, str]):
    """qas_id -> exact (0/1) and F1 of its prediction, max over the gold answers."""
    exact, f1s = {}, {}
    for qid, answers in gold.items():
        prediction = predictions.get(qid, "")
        golds = _golds(answers)
        exact[qid] = max(exact_match(g, prediction) for g in golds)
        f1s[qid] = max(f1(g, prediction) for g in golds)
    return exact, f1s


def _mean(scores: dict[str, float], qids: list[str]) -> float:
    return 100.0 * sum(scores[q] for q in qids) / len(qids) if qids else 0.0


def _best_threshold(predictions, scores, null_odds, has_answer):
    """Official `find_best_thresh`: sweep the threshold over the sorted null odds."""
    current = best = sum(1 for qid in has_answer if not has_answer[qid])
    threshold = 0.0
    for qid in sorted(null_odds, key=lambda q: null_odds[q]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            current += scores[qid]
        else:
            current += -1 if predictions.get(qid) else 0
        if current > best:
            best, threshold = current, null_odds[qid]
    return 100.0 * best / len(scores), threshold


def evaluate(
    gold: dict[str, list[str]],
    predictions: dict[str, str],
    null_odds: dict[str, float] | None = None,
) -> dict[str, float]:
    """gold: qas_id -> gold texts ([] = unanswerable); predictions: qas_id -> text."""
    exact, f1s = raw_scores(gold, predictions)
    qids = list(gold)
    has_answer = {qid: bool(gold[qid]) for qid in qids}  # As the official script.
    has = [q for q in qids if has_answer[q]]
    no = [q for q in qids if not has_answer[q]]
    results = {
        "exact": _mean(exact, qids),
        "f1": _mean(f1s, qids),
        "total": len(qids),
        "missing_predictions": sum(1 for q in qids if q not in predictions),
    }
    if has:
        results.update(
            HasAns_exact=_mean(exact, has), HasAns_f1=_mean(f1s, has), HasAns_total=len(has)
        )
    if no:
        results.update(NoAns_exact=_mean(exact, no), NoAns_f1=_mean(f1s, no), NoAns_total=len(no))
    if null_odds is not None and qids:
        odds = {q: null_odds[q] for q in qids if q in null_odds}
        results["best_exact"], results["best_exact_thresh"] = _best_threshold(
            predictions, exact, odds, has_answer
        )
        results["best_f1"], results["best_f1_thresh"] = _best_threshold(
            predictions, f1s, odds, has_answer
        )
    return results


def evaluate_files(data_file: str, predictions_file: str, null_odds_file: str | None = None):
    """The official script's inputs: the SQuAD JSON and predictions.json (+ null odds)."""
    from bert_keras.squad.reader import gold_answers, read_squad

    examples, _ = read_squad(data_file, version_2_with_negative=True)
    with tf.io.gfile.GFile(predictions_file) as f:
        predictions = json.load(f)
    null_odds = None
    if null_odds_file:
        with tf.io.gfile.GFile(null_odds_file) as f:
            null_odds = json.load(f)
    return evaluate(gold_answers(examples), predictions, null_odds)

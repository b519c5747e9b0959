"""Start/end logits of every window -> answer texts, as GB's `write_predictions` does.

Per example, over all its windows: the `n_best_size` highest start logits and end logits
of each window are paired; a pair is a candidate when both positions are inside the
passage, the start is a position the window has maximal context for, end >= start and the
span has at most `max_answer_length` pieces. Candidates are ranked by start + end logit;
the answer text is the passage's ORIGINAL characters from the start piece's first to the
end piece's last character (accents, case and inner whitespace as written). Duplicate
texts are kept once; the top `n_best_size` get softmax probabilities.

SQuAD 2.0 (`version_2_with_negative`): the null score is the smallest `[CLS]` start + end
logit over the windows; `null_odds = null score - best non-null score`; the prediction is
"" when it exceeds `null_score_diff_threshold`. An example without any span candidate (an
empty passage) predicts "" with null odds +inf (json: Infinity, read by Python's json).

Outputs in the official layout: `predictions.json` {qas_id: text},
`nbest_predictions.json` {qas_id: [{text, probability, start_logit, end_logit}]},
`null_odds.json` {qas_id: float} (v2).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from bert_keras.squad.features import SquadFeatures
from bert_keras.squad.reader import SquadExample


@dataclasses.dataclass
class Predictions:
    answers: dict[str, str]  # qas_id -> prediction (the official predictions.json)
    nbest: dict[str, list[dict]]
    null_odds: dict[str, float] | None  # v2 only


def _top_indexes(logits: np.ndarray, n: int) -> np.ndarray:
    """Indexes of the n largest values; ties to the lower index (GB's stable sort)."""
    return np.argsort(-logits, kind="stable")[:n]


def _softmax(scores: Sequence[float]) -> list[float]:
    if not scores:
        return []
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def example_candidates(
    example: SquadExample,
    features: SquadFeatures,
    rows: Sequence[int],
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best_size: int,
    max_answer_length: int,
):
    """(n-best list of (text, start_logit, end_logit) ranked, null start and end logits).

    `rows` are the example's windows in `features` / the logits arrays (N, T).
    """
    prelim: list[tuple[float, int, int, int, int]] = []  # (score, order, row, start, end)
    null = None  # (score, start_logit, end_logit)
    for row in rows:
        starts, ends = start_logits[row], end_logits[row]  # (T,) each
        feature_null = float(starts[0] + ends[0])
        if null is None or feature_null < null[0]:
            null = (feature_null, float(starts[0]), float(ends[0]))
        in_passage = features.char_starts[row] >= 0  # (T,)
        for s in _top_indexes(starts, n_best_size):
            if not (in_passage[s] and features.is_max_context[row, s]):
                continue
            for e in _top_indexes(ends, n_best_size):
                if not in_passage[e] or e < s or e - s + 1 > max_answer_length:
                    continue
                score = float(starts[s] + ends[e])
                prelim.append((score, len(prelim), row, int(s), int(e)))
    prelim.sort(key=lambda p: (-p[0], p[1]))
    nbest: list[tuple[str, float, float]] = []
    seen: set[str] = set()
    for _, _, row, s, e in prelim:
        if len(nbest) >= n_best_size:
            break
        text = example.context[features.char_starts[row, s] : features.char_ends[row, e]]
        if text in seen:
            continue
        seen.add(text)
        nbest.append((text, float(start_logits[row, s]), float(end_logits[row, e])))
    return nbest, null


def predict_answers(
    examples: Sequence[SquadExample],
    features: SquadFeatures,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    version_2_with_negative: bool = False,
    null_score_diff_threshold: float = 0.0,
) -> Predictions:
    """Logits (N, T) float of `features`' windows -> Predictions for every example."""
    if n_best_size < 1 or max_answer_length < 1:
        raise ValueError(
            f"--n_best_size={n_best_size} and --max_answer_length={max_answer_length} must be >= 1."
        )
    start_logits = np.asarray(start_logits, np.float32)
    end_logits = np.asarray(end_logits, np.float32)
    if not start_logits.shape == end_logits.shape == features.input_word_ids.shape:
        raise ValueError(
            f"Logits {start_logits.shape}/{end_logits.shape} do not match the features "
            f"{features.input_word_ids.shape}."
        )
    rows_of: dict[int, list[int]] = {}
    for row, index in enumerate(features.example_index):
        rows_of.setdefault(int(index), []).append(row)
    answers: dict[str, str] = {}
    all_nbest: dict[str, list[dict]] = {}
    null_odds: dict[str, float] = {}
    for index, example in enumerate(examples):
        nbest, null = example_candidates(
            example,
            features,
            rows_of.get(index, []),
            start_logits,
            end_logits,
            n_best_size,
            max_answer_length,
        )
        best_non_null = nbest[0] if nbest else None
        entries = list(nbest)
        if version_2_with_negative and null is not None:
            # The null answer competes in the n-best list with its own logits (GB).
            entries.append(("", null[1], null[2]))
            entries.sort(key=lambda x: -(x[1] + x[2]))
            if [text for text, _, _ in entries].index("") < n_best_size:
                entries = entries[:n_best_size]
        if not entries:
            entries = [("", 0.0, 0.0)]
        probabilities = _softmax([s + e for _, s, e in entries])
        all_nbest[example.qas_id] = [
            {"text": text, "probability": p, "start_logit": s, "end_logit": e}
            for (text, s, e), p in zip(entries, probabilities, strict=True)
        ]
        if not version_2_with_negative:
            answers[example.qas_id] = best_non_null[0] if best_non_null else ""
            continue
        if best_non_null is None or null is None:
            null_odds[example.qas_id] = math.inf
            answers[example.qas_id] = ""
            continue
        diff = null[0] - best_non_null[1] - best_non_null[2]
        null_odds[example.qas_id] = diff
        answers[example.qas_id] = "" if diff > null_score_diff_threshold else best_non_null[0]
    return Predictions(answers, all_nbest, null_odds if version_2_with_negative else None)


def write_predictions(predictions: Predictions, output_dir: str) -> dict[str, str]:
    """Writes predictions.json, nbest_predictions.json (and null_odds.json); returns paths."""
    tf.io.gfile.makedirs(output_dir)
    files = {"predictions": predictions.answers, "nbest_predictions": predictions.nbest}
    if predictions.null_odds is not None:
        files["null_odds"] = predictions.null_odds
    paths = {}
    for name, value in files.items():
        paths[name] = os.path.join(output_dir, f"{name}.json")
        with tf.io.gfile.GFile(paths[name], "w") as f:
            json.dump(value, f, indent=2, ensure_ascii=False)
    return paths

"""Evaluation metrics as GLUE and CoNLL define them, in NumPy.

- accuracy; binary F1 of the positive class (label 1), as GLUE's MRPC/QQP;
- Matthews correlation (CoLA), the multi-class form (Gorodkin's R_K), which equals the
  binary phi coefficient for two classes; 0 when it is undefined (a constant prediction);
- Pearson and Spearman correlation (STS-B); Spearman ranks ties by their average rank;
- entity-level precision/recall/F1 over chunks, as CoNLL's `conlleval` script counts them
  (IOB1, IOB2/BIO and IOBES tags; an `I-X` after `O` or another type starts a chunk).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def accuracy(labels: npt.ArrayLike, predictions: npt.ArrayLike) -> float:
    y_true, y_pred = np.asarray(labels), np.asarray(predictions)
    _check_same_length(y_true, y_pred)
    return float(np.mean(y_true == y_pred)) if y_true.size else 0.0


def f1_score(labels: npt.ArrayLike, predictions: npt.ArrayLike, positive: int = 1) -> float:
    """F1 of the `positive` class: 2 tp / (2 tp + fp + fn); 0 when there is no positive."""
    y_true, y_pred = np.asarray(labels), np.asarray(predictions)
    _check_same_length(y_true, y_pred)
    tp = np.sum((y_pred == positive) & (y_true == positive))
    fp = np.sum((y_pred == positive) & (y_true != positive))
    fn = np.sum((y_pred != positive) & (y_true == positive))
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator else 0.0


def matthews_corrcoef(labels: npt.ArrayLike, predictions: npt.ArrayLike) -> float:
    """Matthews correlation from the confusion matrix C (rows true, columns predicted):
    (c s - sum_k p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)), c = trace, s = total."""
    y_true, y_pred = np.asarray(labels), np.asarray(predictions)
    _check_same_length(y_true, y_pred)
    classes, encoded = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    true_ids, pred_ids = encoded[: len(y_true)], encoded[len(y_true) :]
    confusion = np.zeros((len(classes), len(classes)), dtype=np.float64)
    np.add.at(confusion, (true_ids, pred_ids), 1.0)
    total = confusion.sum()
    correct = np.trace(confusion)
    t = confusion.sum(axis=1)  # Times each class truly occurs.
    p = confusion.sum(axis=0)  # Times each class is predicted.
    numerator = correct * total - np.dot(p, t)
    denominator = np.sqrt((total**2 - np.dot(p, p)) * (total**2 - np.dot(t, t)))
    return float(numerator / denominator) if denominator else 0.0


def pearson(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    _check_same_length(a, b)
    dx, dy = a - a.mean(), b - b.mean()
    denominator = np.sqrt(np.sum(dx * dx) * np.sum(dy * dy))
    return float(np.sum(dx * dy) / denominator) if denominator else 0.0


def average_ranks(values: npt.ArrayLike) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span."""
    array = np.asarray(values, dtype=np.float64)
    order = np.argsort(array, kind="mergesort")
    sorted_values = array[order]
    ranks = np.empty(len(array), dtype=np.float64)
    start = 0
    while start < len(array):
        end = start
        while end + 1 < len(array) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def spearman(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    _check_same_length(np.asarray(x), np.asarray(y))
    return pearson(average_ranks(x), average_ranks(y))


# --- Entity-level F1 ------------------------------------------------------------------------


def _split_tag(tag: str) -> tuple[str, str]:
    if tag == "O" or not tag:
        return "O", ""
    if "-" in tag:
        prefix, entity_type = tag.split("-", 1)
        return prefix, entity_type
    return "I", tag  # A bare type ("PER") is an inside tag, as conlleval reads it.


def _chunk_ends(prev_prefix, prev_type, prefix, entity_type) -> bool:
    if prev_prefix in ("E", "S"):
        return True
    if prev_prefix == "O":
        return False
    return prefix in ("B", "S", "O") or prev_type != entity_type


def _chunk_starts(prev_prefix, prev_type, prefix, entity_type) -> bool:
    if prefix in ("B", "S"):
        return True
    if prefix in ("I", "E"):
        return prev_prefix in ("E", "S", "O") or prev_type != entity_type
    return False


def extract_chunks(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """Chunks (type, first index, last index) of one tag sequence, conlleval's rules."""
    chunks = set()
    prev_prefix, prev_type = "O", ""
    start = None
    for i, tag in enumerate([*tags, "O"]):
        prefix, entity_type = _split_tag(tag)
        if start is not None and _chunk_ends(prev_prefix, prev_type, prefix, entity_type):
            chunks.add((prev_type, start, i - 1))
            start = None
        if prefix != "O" and _chunk_starts(prev_prefix, prev_type, prefix, entity_type):
            start = i
        prev_prefix, prev_type = prefix, entity_type
    return chunks


def entity_f1(
    labels: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Micro precision/recall/F1 over exact chunk matches, summed over sentences."""
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} label sequences but {len(predictions)} predictions.")
    correct = found = gold = 0
    for true_tags, pred_tags in zip(labels, predictions, strict=True):
        if len(true_tags) != len(pred_tags):
            raise ValueError(
                f"A sentence has {len(true_tags)} labels but {len(pred_tags)} predictions."
            )
        true_chunks, pred_chunks = extract_chunks(true_tags), extract_chunks(pred_tags)
        correct += len(true_chunks & pred_chunks)
        found += len(pred_chunks)
        gold += len(true_chunks)
    precision = correct / found if found else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _check_same_length(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{a.shape[0]} labels but {b.shape[0]} predictions.")

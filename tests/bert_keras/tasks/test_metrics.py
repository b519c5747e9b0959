"""Metrics against values computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest

from bert_keras.tasks import metrics


def test_accuracy():
    assert metrics.accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == 0.75
    assert metrics.accuracy(["a", "b"], ["a", "b"]) == 1.0
    with pytest.raises(ValueError, match="3 labels but 2 predictions"):
        metrics.accuracy([0, 1, 1], [0, 1])


def test_f1_of_positive_class():
    # tp = 2 (positions 0, 4), fp = 1 (2), fn = 1 (1): F1 = 2*2 / (2*2 + 1 + 1) = 2/3.
    assert metrics.f1_score([1, 1, 0, 0, 1], [1, 0, 1, 0, 1]) == pytest.approx(2 / 3)
    # Positive class 0 instead: tp = 1 (3), fp = 1 (1), fn = 1 (2): 2/4.
    assert metrics.f1_score([1, 1, 0, 0, 1], [1, 0, 1, 0, 1], positive=0) == pytest.approx(0.5)
    assert metrics.f1_score([0, 0], [0, 0]) == 0.0  # No positive anywhere.


def test_matthews_binary():
    # tp = 2, tn = 2, fp = 1, fn = 1: (2*2 - 1*1) / sqrt(3*3*3*3) = 3/9.
    assert metrics.matthews_corrcoef([1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 1]) == pytest.approx(1 / 3)
    assert metrics.matthews_corrcoef([1, 0, 1], [1, 0, 1]) == pytest.approx(1.0)
    assert metrics.matthews_corrcoef([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)
    assert metrics.matthews_corrcoef([1, 0, 1], [1, 1, 1]) == 0.0  # Constant: undefined -> 0.


def test_matthews_multiclass():
    # c = 5 correct of s = 6; true counts t = (2, 2, 2); predicted p = (2, 1, 3):
    # (5*6 - (2*2 + 1*2 + 3*2)) / sqrt((36 - (4+1+9)) * (36 - 12)) = 18 / sqrt(528).
    got = metrics.matthews_corrcoef([0, 0, 1, 1, 2, 2], [0, 0, 1, 2, 2, 2])
    assert got == pytest.approx(18 / math.sqrt(528))


def test_pearson():
    # dx = (-1, 0, 1), dy = (-7/3, -1/3, 8/3): sum dx dy = 5, sum dx^2 = 2, sum dy^2 = 114/9.
    assert metrics.pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(5 / math.sqrt(2 * 114 / 9))
    assert metrics.pearson([1, 1, 1], [1, 2, 3]) == 0.0


def test_spearman_with_ties():
    # Ranks x = (1, 2.5, 2.5, 4), y = (1, 3, 2, 4); centred: (-1.5, 0, 0, 1.5) and
    # (-1.5, .5, -.5, 1.5): 4.5 / sqrt(4.5 * 5).
    assert metrics.average_ranks([1, 2, 2, 3]).tolist() == [1, 2.5, 2.5, 4]
    assert metrics.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert metrics.spearman([1, 2, 3], [10, 200, 3000]) == pytest.approx(1.0)


def test_chunks_iob2_iob1_iobes():
    assert metrics.extract_chunks(["B-PER", "I-PER", "O", "B-LOC"]) == {
        ("PER", 0, 1),
        ("LOC", 3, 3),
    }
    # IOB1: I- after O starts a chunk; B- separates two adjacent chunks of one type.
    assert metrics.extract_chunks(["I-PER", "I-PER", "O", "I-LOC", "B-LOC"]) == {
        ("PER", 0, 1),
        ("LOC", 3, 3),
        ("LOC", 4, 4),
    }
    # A type change inside a run ends one chunk and starts another.
    assert metrics.extract_chunks(["B-PER", "I-LOC"]) == {("PER", 0, 0), ("LOC", 1, 1)}
    assert metrics.extract_chunks(["S-PER", "B-LOC", "E-LOC", "O"]) == {
        ("PER", 0, 0),
        ("LOC", 1, 2),
    }


def test_entity_f1():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    # Sentence 1: PER right, LOC predicted as ORG; sentence 2: ORG missed.
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "O"]]
    result = metrics.entity_f1(gold, pred)
    # 1 correct of 2 found, of 3 gold: P = 1/2, R = 1/3, F = 2PR/(P+R) = 0.4.
    assert result["precision"] == pytest.approx(0.5)
    assert result["recall"] == pytest.approx(1 / 3)
    assert result["f1"] == pytest.approx(0.4)
    # A partial span is wrong at entity level.
    assert metrics.entity_f1([["B-PER", "I-PER"]], [["B-PER", "O"]])["f1"] == 0.0
    with pytest.raises(ValueError, match="2 labels but 1 predictions"):
        metrics.entity_f1([["O", "O"]], [["O"]])

"""Masked-LM predictions: GB's count formula, candidates, 80/10/10 and whole-word masking."""

from __future__ import annotations

import collections
import math
import random

import numpy as np
import pytest

from pipeline.masking import candidate_positions, create_masked_lm_predictions, num_to_predict

CLS, SEP, MASK, VOCAB = 2, 3, 4, 1000


def _instance(len_a: int, len_b: int, offset: int = 100) -> np.ndarray:
    ids = [
        CLS,
        *range(offset, offset + len_a),
        SEP,
        *range(offset + 500, offset + 500 + len_b),
        SEP,
    ]
    return np.array(ids, np.int32)


def test_num_to_predict_is_gbs_formula():
    assert num_to_predict(128, 0.15, 20) == 19  # round(19.2)
    assert num_to_predict(512, 0.15, 20) == 20  # capped
    assert num_to_predict(5, 0.15, 20) == 1  # at least one
    assert num_to_predict(10, 0.25, 20) == 2  # round(2.5) -> 2: halves to even
    assert num_to_predict(14, 0.25, 20) == 4  # round(3.5) -> 4
    for length in range(5, 200):
        assert num_to_predict(length, 0.15, 20) == min(20, max(1, int(round(length * 0.15))))


def test_candidates_skip_cls_and_seps():
    assert candidate_positions(8, 3).tolist() == [1, 2, 3, 5, 6]


@pytest.mark.parametrize("len_a,len_b", [(1, 1), (3, 40), (60, 65), (10, 2)])
def test_masked_positions_count_order_and_labels(len_a, len_b):
    ids = _instance(len_a, len_b)
    for seed in range(50):
        masked = create_masked_lm_predictions(
            ids, len_a, 0.15, 20, VOCAB, MASK, random.Random(seed)
        )
        positions = masked.positions.tolist()
        assert len(positions) == num_to_predict(len(ids), 0.15, 20)
        assert positions == sorted(set(positions))
        assert not {0, len_a + 1, len(ids) - 1} & set(positions)
        assert masked.label_ids.tolist() == ids[positions].tolist()
        # Only chosen positions change; [CLS]/[SEP] stay.
        changed = np.flatnonzero(masked.output_ids != ids)
        assert set(changed.tolist()) <= set(positions)
        assert masked.output_ids[0] == CLS and masked.output_ids[-1] == SEP


def _binomial_ok(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_80_10_10_and_uniform_selection():
    ids = _instance(60, 65)
    mask = keep = rand = total = 0
    hits = np.zeros(len(ids), np.int64)
    for seed in range(3000):
        masked = create_masked_lm_predictions(ids, 60, 0.15, 20, VOCAB, MASK, random.Random(seed))
        out = masked.output_ids[masked.positions]
        hits[masked.positions] += 1
        is_mask = out == MASK
        is_keep = out == masked.label_ids
        mask += int(is_mask.sum())
        keep += int(is_keep.sum())
        rand += int((~is_mask & ~is_keep).sum())
        total += len(out)
    # A random replacement equal to the original (1/VOCAB) counts as kept: negligible here.
    assert _binomial_ok(mask, total, 0.8)
    assert _binomial_ok(keep, total, 0.1 + 0.1 / VOCAB)
    assert _binomial_ok(rand, total, 0.1 - 0.1 / VOCAB)
    # Every candidate equally likely: each is chosen with probability 19 / 125.
    candidates = candidate_positions(len(ids), 60)
    for position in candidates:
        assert _binomial_ok(int(hits[position]), 3000, 19 / len(candidates))


def test_whole_word_masking_masks_whole_words_with_one_decision():
    len_a, len_b = 30, 30
    ids = _instance(len_a, len_b)
    # Words of three pieces: a word starts at every third position of A and of B.
    word_starts = np.zeros(len(ids), bool)
    word_starts[[0, len_a + 1, len(ids) - 1]] = True
    word_starts[1 : len_a + 1 : 3] = True
    word_starts[len_a + 2 : -1 : 3] = True
    decisions = set()
    for seed in range(300):
        masked = create_masked_lm_predictions(
            ids, len_a, 0.15, 20, VOCAB, MASK, random.Random(seed), word_starts
        )
        positions = masked.positions.tolist()
        n = num_to_predict(len(ids), 0.15, 20)
        assert len(positions) <= n and len(positions) % 3 == 0 and len(positions) >= n - 2
        assert positions == sorted(positions)
        for start in positions[::3]:
            assert word_starts[start]
            word = [start, start + 1, start + 2]
            assert word == positions[positions.index(start) : positions.index(start) + 3]
            out = masked.output_ids[word]
            kinds = {
                "mask" if o == MASK else "keep" if o == ids[p] else "random"
                for o, p in zip(out, word, strict=True)
            }
            assert len(kinds) == 1  # One 80/10/10 decision per word.
            decisions |= kinds
    assert decisions == {"mask", "keep", "random"}


def test_whole_words_never_span_a_sep():
    ids = _instance(2, 2)
    word_starts = np.zeros(len(ids), bool)  # Only [CLS] starts a "word": B must still split.
    word_starts[0] = True
    for seed in range(50):
        masked = create_masked_lm_predictions(
            ids, 2, 0.5, 20, VOCAB, MASK, random.Random(seed), word_starts
        )
        positions = set(masked.positions.tolist())
        assert positions in ({1, 2}, {4, 5}, set()) or positions == {1, 2, 4, 5}


def test_same_rng_same_masks():
    ids = _instance(40, 40)
    a = create_masked_lm_predictions(ids, 40, 0.15, 20, VOCAB, MASK, random.Random(3))
    b = create_masked_lm_predictions(ids, 40, 0.15, 20, VOCAB, MASK, random.Random(3))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_ngram_probabilities_favour_short_spans():
    from pipeline.masking import ngram_probabilities

    p = ngram_probabilities(3)
    assert p.sum() == pytest.approx(1.0)
    assert p.tolist() == pytest.approx([6 / 11, 3 / 11, 2 / 11])  # 1 : 1/2 : 1/3


def test_ngram_spans_lengths_follow_one_over_n_and_stay_in_segments():
    from pipeline.masking import ngram_probabilities, ngram_spans

    rng = random.Random(7)
    n_max = 3
    lengths = collections.Counter()
    for _ in range(400):
        ids = _instance(60, 60)
        candidates = candidate_positions(len(ids), 60)
        units = [np.array([c]) for c in candidates]
        keys = np.frombuffer(rng.randbytes(4 * len(ids)), np.uint32)
        draws = np.frombuffer(rng.randbytes(4 * len(ids)), np.uint32)
        # Room for every drawn length: few spans, so shortening to fit is rare.
        spans = ngram_spans(units, keys, draws, 12, n_max)
        assert sum(len(s) for s in spans) == 12
        positions = np.concatenate(spans)
        assert len(set(positions.tolist())) == len(positions)  # No overlap.
        for span in spans:
            assert (np.diff(span) == 1).all()  # Contiguous ...
            assert not (span[0] <= 61 <= span[-1])  # ... and never across the middle [SEP].
        # The first span drawn is never shortened by the count: its length is the draw's.
        lengths[len(spans[0])] += 1
    total = sum(lengths.values())
    for n, p in enumerate(ngram_probabilities(n_max), start=1):
        assert abs(lengths[n] - total * p) <= 4 * math.sqrt(total * p * (1 - p)), lengths


def test_ngram_whole_word_masking_decides_80_10_10_per_span():
    rng = random.Random(3)
    ids = _instance(50, 50)
    # Words of 1-3 pieces.
    word_starts = np.zeros(len(ids), bool)
    word_starts[[0, 51, 102]] = True
    word_starts[1 + np.cumsum([0] + [1, 2, 3] * 8)[:-1][:25]] = True
    word_starts[52 + np.cumsum([0] + [3, 1, 2] * 8)[:-1][:25]] = True
    kinds = collections.Counter()
    for _ in range(300):
        masked = create_masked_lm_predictions(
            ids, 50, 0.15, 20, 10**9, MASK, rng, word_starts, max_ngram_size=3
        )
        positions = masked.positions.tolist()
        assert len(positions) == num_to_predict(len(ids), 0.15, 20)
        # Whole words only.
        for p in positions:
            start = p
            while not word_starts[start]:
                start -= 1
                assert start in positions
        # The span's action covers each of its words: no word mixes [MASK], kept and random
        # pieces (a vocabulary of 1e9 ids makes a random id equal to [MASK] or the original
        # impossible in practice).
        seen = masked.output_ids[masked.positions]
        kind = np.where(seen == MASK, 0, np.where(seen == masked.label_ids, 1, 2))
        for i, p in enumerate(positions):
            if not word_starts[p]:
                assert kind[i] == kind[i - 1] and positions[i - 1] == p - 1
        kinds["mask"] += int((kind == 0).sum())
        kinds["total"] += len(seen)
    assert 0.7 < kinds["mask"] / kinds["total"] < 0.9


def test_ngram_size_one_is_the_default_masking():
    ids = _instance(30, 40)
    a = create_masked_lm_predictions(ids, 30, 0.15, 20, VOCAB, MASK, random.Random(5))
    b = create_masked_lm_predictions(
        ids, 30, 0.15, 20, VOCAB, MASK, random.Random(5), max_ngram_size=1
    )
    assert all((x == y).all() for x, y in zip(a, b, strict=True))


def test_ngram_piece_spans_are_shown_one_way_per_span():
    from pipeline.masking import ngram_spans

    ids = _instance(60, 60)
    candidates = candidate_positions(len(ids), 60)
    n = num_to_predict(len(ids), 0.15, 20)
    multi = 0
    for seed in range(200):
        masked = create_masked_lm_predictions(
            ids, 60, 0.15, 20, 10**9, MASK, random.Random(seed), max_ngram_size=3
        )
        # The same draws, in the same order, give the spans the function chose.
        rng = random.Random(seed)
        keys, _, _ = np.frombuffer(rng.randbytes(12 * len(ids)), np.uint32).reshape(3, -1)
        lengths_draw = np.frombuffer(rng.randbytes(4 * len(ids)), np.uint32)
        units = [np.array([c]) for c in candidates]
        spans = ngram_spans(units, keys, lengths_draw, n, 3)
        assert sorted(np.concatenate(spans).tolist()) == masked.positions.tolist()
        for span in spans:
            shown = masked.output_ids[span]
            kinds = {
                0 if x == MASK else 1 if x == ids[p] else 2
                for x, p in zip(shown, span, strict=True)
            }
            assert len(kinds) == 1
            multi += len(span) > 1
    assert multi > 200  # Many multi-piece spans were checked.


@pytest.mark.parametrize("seed", range(4))
def test_mask_batch_equals_masking_each_instance(seed):
    """Same draws, same masks: the batch path is the per-instance rules, vectorised."""
    from pipeline.masking import draws_batch, mask_batch, masking_draws

    rng = np.random.default_rng(seed)
    rows, width = int(rng.integers(1, 200)), int(rng.integers(5, 140))
    predictions, prob = int(rng.integers(1, 25)), float(rng.choice([0.1, 0.15, 0.5]))
    lengths = rng.integers(3, width + 1, rows)
    draw_rng = random.Random(seed)
    ids = np.zeros((rows, width), np.int32)
    candidates = np.zeros((rows, width), bool)
    draws, expected = [], []
    for row, length in enumerate(lengths.tolist()):
        ids[row, :length] = rng.integers(5, VOCAB, length)
        if row % 3:  # the pair layout
            num_a = int(rng.integers(0, length - 2))
            chosen = candidate_positions(length, num_a)
        else:  # given candidates (RoBERTa blocks), possibly none
            num_a = 0
            chosen = np.flatnonzero(rng.random(length) < rng.random())
        candidates[row, chosen] = True
        state = draw_rng.getstate()
        expected.append(
            create_masked_lm_predictions(
                ids[row, :length],
                num_a,
                prob,
                predictions,
                VOCAB,
                MASK,
                draw_rng,
                candidates=chosen,
            )
        )
        draw_rng.setstate(state)
        draws.append(masking_draws(draw_rng, length))
    batch = mask_batch(
        ids,
        lengths,
        candidates,
        draws_batch(draws, lengths, width),
        prob,
        predictions,
        VOCAB,
        MASK,
    )
    for row, (masked, length) in enumerate(zip(expected, lengths.tolist(), strict=True)):
        count = int(batch.counts[row])
        assert count == len(masked.positions)
        assert batch.output_ids[row, :length].tolist() == masked.output_ids.tolist()
        assert not batch.output_ids[row, length:].any()
        assert batch.positions[row, :count].tolist() == masked.positions.tolist()
        assert batch.label_ids[row, :count].tolist() == masked.label_ids.tolist()
        assert not batch.positions[row, count:].any() and not batch.label_ids[row, count:].any()

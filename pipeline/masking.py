"""Masked-LM predictions: google-research/bert's (GB) rules, vectorised per instance.

- `n = min(max_predictions_per_seq, max(1, round(len(tokens) * masked_lm_prob)))`, where
  `len(tokens)` counts [CLS] and both [SEP]s and `round` rounds halves to even (Python's);
- candidates: every position but [CLS] and the two [SEP]s; a uniformly random subset of
  `n` of them is chosen (GB shuffles the candidates and takes the first `n`);
- each chosen position: 80% [MASK], 10% kept, 10% a random id of the whole vocabulary;
- with whole-word masking, candidates are words (a piece that does not start a word joins
  the previous one, never across [SEP]); words are taken in random order and one that would
  overflow `n` is skipped, as in GB; the 80/10/10 choice is made once per word (GB decides
  per piece, its issue #910), a random replacement is drawn per piece;
- with `max_ngram_size` N > 1 (not in GB; SpanBERT/ERNIE-style n-gram masking), spans of
  1..N consecutive units (words with whole-word masking, else pieces) are chosen, the span
  length drawn with p(n) proportional to 1/n (short spans most often), never across a [SEP];
  the 80/10/10 choice is made once per chosen span (SpanBERT's "at the span level": all its
  pieces become [MASK], stay, or become random ids together); N = 1 is the rule above;
- positions are returned in ascending order.

Speed: GB's loop costs about 20 Python-level random calls and a shuffle per instance. Here
one `rng.randbytes` call (`masking_draws`) gives three uint32 arrays of length L (selection
keys, 80/10/10 choices, replacement ids) and the rest is NumPy. Per instance that NumPy
work measured ~20 us at L=128, P=20 (GB's loop: 77 us), mostly call overhead; the pipeline
therefore takes the draws when an instance is paired and masks a whole batch at once
(`mask_batch`, ~4 us an instance, equal instance by instance). Still drawn from the
document's `rng`, so it is as deterministic as GB's.

Dimension legend: L instance length, M masked positions (<= max_predictions_per_seq).
"""

from __future__ import annotations

import random
from typing import NamedTuple

import numpy as np

_UINT32_RANGE = 2**32
_MASK_BELOW = int(0.8 * _UINT32_RANGE)  # action < this: [MASK]
_KEEP_BELOW = int(0.9 * _UINT32_RANGE)  # this <= action: random id; between: kept.


class MaskedLm(NamedTuple):
    output_ids: np.ndarray  # (L,) int32, the ids the model sees.
    positions: np.ndarray  # (M,) int64, ascending.
    label_ids: np.ndarray  # (M,) int32, the original ids at `positions`.


def num_to_predict(num_tokens: int, masked_lm_prob: float, max_predictions_per_seq: int) -> int:
    """GB's count of masked positions for an instance of `num_tokens` (incl. [CLS]/[SEP])."""
    return min(max_predictions_per_seq, max(1, int(round(num_tokens * masked_lm_prob))))


def candidate_positions(length: int, num_a: int) -> np.ndarray:
    """Positions of `[CLS] A [SEP] B [SEP]` that may be masked: A and B. (length - 3,) int64."""
    return np.concatenate([np.arange(1, num_a + 1), np.arange(num_a + 2, length - 1)])


def _whole_words(candidates: np.ndarray, word_starts: np.ndarray) -> list[np.ndarray]:
    """Candidate positions grouped into words: a new word where a piece starts one or
    where positions are not adjacent (at [SEP])."""
    breaks = word_starts[candidates].copy()
    breaks[0] = True
    breaks[1:] |= np.diff(candidates) != 1
    return np.split(candidates, np.flatnonzero(breaks)[1:])


def ngram_probabilities(max_ngram_size: int) -> np.ndarray:
    """p(n) proportional to 1/n for n = 1..max_ngram_size: short spans are the most frequent."""
    weights = 1.0 / np.arange(1, max_ngram_size + 1)
    return weights / weights.sum()


def ngram_spans(
    units: list[np.ndarray],
    keys: np.ndarray,
    lengths_draw: np.ndarray,
    num_to_mask: int,
    max_ngram_size: int,
) -> list[np.ndarray]:
    """Chooses spans of 1..max_ngram_size consecutive units (words or pieces) to mask.

    Span starts are taken in the random order of `keys` at their first position; each start
    draws its length n with p(n) proportional to 1/n (SpanBERT / ERNIE style n-gram masking,
    weighted toward short spans), from `lengths_draw` at the same position. A span never
    crosses a gap between candidates ([SEP], a document separator) nor an already chosen
    unit, and never takes the count past `num_to_mask`: it is shortened until it fits, and
    skipped when not even one unit fits (as GB skips a word that would overflow).

    Returns the chosen spans' positions (each (pieces,) int64), in the order chosen.
    """
    if not units:
        return []
    cdf = np.cumsum(ngram_probabilities(max_ngram_size))
    firsts = np.array([unit[0] for unit in units])
    lasts = np.array([unit[-1] for unit in units])
    sizes = np.array([len(unit) for unit in units])
    # Units in the same run of adjacent candidates share a segment; spans stay inside one.
    segment = np.concatenate([[0], np.cumsum(firsts[1:] != lasts[:-1] + 1)])
    covered = np.zeros(len(units), bool)
    spans: list[np.ndarray] = []
    count = 0
    for u in np.argsort(keys[firsts], kind="stable"):
        if count >= num_to_mask:
            break
        if covered[u]:
            continue
        n = 1 + int(np.searchsorted(cdf, lengths_draw[firsts[u]] / _UINT32_RANGE, side="right"))
        n = min(n, max_ngram_size)
        while n >= 1:
            end = u + n
            if (
                end <= len(units)
                and segment[end - 1] == segment[u]
                and not covered[u:end].any()
                and count + sizes[u:end].sum() <= num_to_mask
            ):
                break
            n -= 1
        if n == 0:
            continue
        covered[u : u + n] = True
        spans.append(np.concatenate(units[u : u + n]))
        count += int(sizes[u : u + n].sum())
    return spans


def _unit_positions_and_actions(
    units: list[np.ndarray], actions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Chosen units (words or spans, each (pieces,) int64) -> their positions ascending (M,)
    and each position's 80/10/10 draw (M,) uint32: the draw at a unit's first piece, so
    the choice is made once per unit."""
    if not units:
        return np.zeros(0, np.int64), np.zeros(0, np.uint32)
    unit_actions = np.concatenate([np.full(len(unit), actions[unit[0]]) for unit in units])
    positions = np.concatenate(units)
    order = np.argsort(positions, kind="stable")
    return positions[order], unit_actions[order]


def masking_draws(rng: random.Random, length: int) -> bytes:
    """The random bytes masking takes from `rng` for an instance of `length`: three uint32
    arrays of length L (selection keys, 80/10/10 choices, replacement ids). One call, so the
    caller may draw them in sequence with other draws and mask later (`mask_batch`)."""
    return rng.randbytes(12 * length)


def create_masked_lm_predictions(
    input_ids: np.ndarray,
    num_a: int,
    masked_lm_prob: float,
    max_predictions_per_seq: int,
    vocab_size: int,
    mask_id: int,
    rng: random.Random,
    word_starts: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    max_ngram_size: int = 1,
) -> MaskedLm:
    """Masks `[CLS] A [SEP] B [SEP]` (`input_ids` (L,), A of `num_a` tokens).

    `word_starts` (L,) bool turns on whole-word masking. `candidates` (C,) int64 ascending,
    when given, replaces the pair layout's candidates (`num_a` is then unused): RoBERTa
    blocks `[CLS] tokens [SEP]` with inner document separators pass theirs.
    `max_ngram_size` > 1 turns on n-gram masking (`ngram_spans`).
    """
    length = len(input_ids)
    if candidates is None:
        candidates = candidate_positions(length, num_a)  # (L - 3,)
    n = min(num_to_predict(length, masked_lm_prob, max_predictions_per_seq), len(candidates))
    draws = np.frombuffer(masking_draws(rng, length), dtype=np.uint32).reshape(3, length)
    keys, actions, replacements = draws  # (L,) uint32 each

    if max_ngram_size > 1:
        units: list[np.ndarray] = []
        if len(candidates):
            units = (
                _whole_words(candidates, word_starts)
                if word_starts is not None
                else np.split(candidates, np.arange(1, len(candidates)))
            )
        # A fourth uint32 per position draws the span lengths; the other three are as above.
        lengths_draw = np.frombuffer(rng.randbytes(4 * length), dtype=np.uint32)  # (L,)
        spans = ngram_spans(units, keys, lengths_draw, n, max_ngram_size)
        positions, word_actions = _unit_positions_and_actions(spans, actions)
    elif word_starts is None:
        order = np.argsort(keys[candidates], kind="stable")
        positions = np.sort(candidates[order[:n]])  # (M,)
        word_actions = actions[positions]
    else:
        words = _whole_words(candidates, word_starts)
        firsts = np.array([word[0] for word in words])
        chosen: list[np.ndarray] = []
        count = 0
        for w in np.argsort(keys[firsts], kind="stable"):
            if count >= n:
                break
            if count + len(words[w]) > n:
                continue
            chosen.append(words[w])
            count += len(words[w])
        positions, word_actions = _unit_positions_and_actions(chosen, actions)

    output_ids = input_ids.copy()
    label_ids = input_ids[positions]
    to_mask = positions[word_actions < _MASK_BELOW]
    to_random = positions[word_actions >= _KEEP_BELOW]
    output_ids[to_mask] = mask_id
    output_ids[to_random] = (replacements[to_random] % vocab_size).astype(np.int32)
    return MaskedLm(output_ids, positions.astype(np.int64), label_ids)


class MaskedLmBatch(NamedTuple):
    output_ids: np.ndarray  # (N, S) int32, the ids the model sees (0 beyond each length).
    positions: np.ndarray  # (N, P) int64, ascending, 0-padded beyond `counts`.
    label_ids: np.ndarray  # (N, P) int32, the original ids at `positions`, 0-padded.
    counts: np.ndarray  # (N,) int64, masked positions of each instance.


def draws_batch(draws: list[bytes], lengths: np.ndarray, width: int) -> np.ndarray:
    """`masking_draws` of N instances -> (N, 3, S) uint32, each row's arrays 0-padded."""
    flat = np.frombuffer(b"".join(draws), dtype=np.uint32)
    # Row-major order of the valid cells is (instance, array, position): the draws' order.
    valid = np.arange(width) < lengths[:, None, None]  # (N, 1, S)
    out = np.zeros((len(lengths), 3, width), np.uint32)
    out[np.broadcast_to(valid, out.shape)] = flat
    return out


def mask_batch(
    input_ids: np.ndarray,
    lengths: np.ndarray,
    candidates: np.ndarray,
    draws: np.ndarray,
    masked_lm_prob: float,
    max_predictions_per_seq: int,
    vocab_size: int,
    mask_id: int,
) -> MaskedLmBatch:
    """`create_masked_lm_predictions` (default masking) of N instances at once, from the
    same draws: equal, instance by instance, to masking each with its `masking_draws`.

    input_ids (N, S) int32 0-padded; lengths (N,); candidates (N, S) bool (the positions
    that may be masked); draws (N, 3, S) uint32 (`draws_batch`). Why: per instance, NumPy's
    call overhead (~20 small calls) cost ~20 us; here it is paid once per batch.
    """
    num_rows, width = input_ids.shape
    column = np.arange(width)  # (S,)
    wanted = np.array(  # GB's count for every length up to S, then looked up: (N,)
        [num_to_predict(n, masked_lm_prob, max_predictions_per_seq) for n in range(width + 1)]
    )[lengths]
    counts = np.minimum(wanted, candidates.sum(axis=1))  # (N,)
    keys, actions, replacements = draws[:, 0], draws[:, 1], draws[:, 2]  # (N, S) each
    # Candidates by key, ties by position (as a stable sort); the others after every one.
    # Unique sort keys let a plain sort and a threshold replace an argsort.
    sort_keys = np.where(
        candidates, keys.astype(np.int64) * width + column, np.int64(2**62)
    )  # (N, S)
    threshold = np.sort(sort_keys, axis=1)[np.arange(num_rows), np.maximum(counts - 1, 0)]
    chosen = (sort_keys <= threshold[:, None]) & (counts[:, None] > 0)  # (N, S)
    rows, cols = np.nonzero(chosen)  # Row-major: positions ascending within a row.
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)  # (M,)
    positions = np.zeros((num_rows, max_predictions_per_seq), np.int64)
    label_ids = np.zeros((num_rows, max_predictions_per_seq), np.int32)
    positions[rows, slot] = cols
    label_ids[rows, slot] = input_ids[rows, cols]
    action = actions[rows, cols]  # (M,)
    output_ids = input_ids.copy()
    to_mask = action < _MASK_BELOW
    output_ids[rows[to_mask], cols[to_mask]] = mask_id
    to_random = action >= _KEEP_BELOW
    output_ids[rows[to_random], cols[to_random]] = (
        replacements[rows[to_random], cols[to_random]] % vocab_size
    ).astype(np.int32)
    return MaskedLmBatch(output_ids, positions, label_ids, counts)

"""Pairing and truncation: google-research/bert's rules, with a seeded rng."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.instances import (
    PairingStats,
    assemble,
    create_instances_from_document,
    truncate_seq_pair,
    truncation_bounds,
)
from tests.pipeline.pipeline_test_util import tokenized_document

CLS, SEP = 900_001, 900_002  # Outside the generated ids (document * 1000 + ...).


def _gb_truncate(tokens_a: list, tokens_b: list, max_num_tokens: int, rng: random.Random) -> None:
    """GB's truncate_seq_pair, verbatim in behaviour (in place, one rng.random() per token)."""
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        trunc = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del trunc[0]
        else:
            trunc.pop()


@pytest.mark.parametrize(
    "len_a,len_b,max_tokens", [(50, 50, 61), (3, 90, 20), (90, 3, 20), (7, 7, 14), (1, 200, 2)]
)
def test_truncate_seq_pair_matches_gb(len_a, len_b, max_tokens):
    for seed in range(20):
        a, b = list(range(len_a)), list(range(100, 100 + len_b))
        expected_a, expected_b = list(a), list(b)
        _gb_truncate(expected_a, expected_b, max_tokens, random.Random(seed))
        got_a, got_b = truncate_seq_pair(a, b, max_tokens, random.Random(seed))
        assert (got_a, got_b) == (expected_a, expected_b)
        assert len(got_a) + len(got_b) <= max_tokens
        assert a == list(range(len_a))  # Inputs untouched.


def test_truncation_of_a_long_line_is_linear():
    (a_lo, a_hi), (b_lo, b_hi) = truncation_bounds(1, 300_000, 125, random.Random(0))
    assert (a_hi - a_lo, b_hi - b_lo) == (1, 124)


def test_assemble_layout():
    ids, starts = assemble(
        np.array([10, 11]), np.array([20]), CLS, SEP, np.array([True, False]), np.array([True])
    )
    assert ids.tolist() == [CLS, 10, 11, SEP, 20, SEP]
    assert starts.tolist() == [True, True, False, True, True, True]


def _documents(num_documents, sentences=12, length=7, with_words=False):
    return [
        tokenized_document(
            f"d{d}",
            [[1000 * d + 10 * s + k for k in range(length)] for s in range(sentences)],
            with_words,
        )
        for d in range(num_documents)
    ]


def _origin(token: int) -> tuple[int, int]:
    """(document, sentence) of a generated token id."""
    return token // 1000, (token % 1000) // 10


def test_instances_layout_segments_and_sources():
    documents = _documents(6)
    max_seq_length = 40
    labels = []
    for index in range(len(documents)):
        for seed in range(30):
            for inst in create_instances_from_document(
                documents, index, max_seq_length, 0.1, CLS, SEP, random.Random(seed)
            ):
                ids = inst.input_ids.tolist()
                assert len(ids) <= max_seq_length
                assert ids[0] == CLS and ids[inst.num_a + 1] == SEP and ids[-1] == SEP
                assert ids.count(SEP) == 2 and ids.count(CLS) == 1
                segments = inst.segment_ids.tolist()
                assert segments == [0] * (inst.num_a + 2) + [1] * (len(ids) - inst.num_a - 2)
                a, b = ids[1 : inst.num_a + 1], ids[inst.num_a + 2 : -1]
                assert a and b
                assert {_origin(t)[0] for t in a} == {index}
                b_docs = {_origin(t)[0] for t in b}
                assert len(b_docs) == 1
                if inst.is_random_next:
                    assert b_docs != {index}  # Never the same document.
                else:
                    assert b_docs == {index}
                    # The true continuation: B's first sentence follows A's last.
                    assert _origin(b[0])[1] >= _origin(a[-1])[1]
                labels.append(inst.is_random_next)
    share = np.mean(labels)
    assert 0.45 < share < 0.65, share


def test_one_document_makes_no_random_pairs_and_counts_it():
    documents = _documents(1, sentences=9)
    stats = PairingStats()
    instances = []
    for seed in range(10):
        instances += create_instances_from_document(
            documents, 0, 30, 0.0, CLS, SEP, random.Random(seed), stats
        )
    assert instances and not any(i.is_random_next for i in instances)
    assert stats.random_next == 0
    assert stats.random_next_unavailable > 0
    assert stats.instances == len(instances)


def test_one_sentence_chunks_need_another_document():
    # Every sentence fills the target alone: each chunk has one sentence, so B is random.
    documents = _documents(1, sentences=5, length=40)
    stats = PairingStats()
    instances = list(
        create_instances_from_document(documents, 0, 32, 0.0, CLS, SEP, random.Random(0), stats)
    )
    assert instances == []
    assert stats.chunks_skipped_no_random_document == 5
    documents = _documents(2, sentences=5, length=40)
    instances = list(
        create_instances_from_document(documents, 0, 32, 0.0, CLS, SEP, random.Random(0))
    )
    assert len(instances) == 5 and all(i.is_random_next for i in instances)
    assert all(len(i.input_ids) == 32 for i in instances)


def test_unused_sentences_are_put_back():
    # One-token sentences: chunks and random B fill the target exactly, so nothing is
    # truncated and the scan position is visible. After a random B, the next A starts right
    # after the previous A (the rest of the chunk was put back); after a true B, after B.
    documents = _documents(3, sentences=100, length=1)
    kinds = set()
    for seed in range(10):
        instances = list(
            create_instances_from_document(documents, 1, 40, 0.0, CLS, SEP, random.Random(seed))
        )
        assert _origin(int(instances[0].input_ids[1]))[1] == 0
        for previous, current in zip(instances, instances[1:], strict=False):
            ids = previous.input_ids
            last_used = ids[previous.num_a] if previous.is_random_next else ids[-2]
            assert _origin(int(current.input_ids[1]))[1] == _origin(int(last_used))[1] + 1
            kinds.add(previous.is_random_next)
    assert kinds == {True, False}


def test_same_rng_same_instances():
    documents = _documents(4, with_words=True)
    run = lambda: [  # noqa: E731
        (i.input_ids.tolist(), i.num_a, i.is_random_next)
        for i in create_instances_from_document(documents, 2, 64, 0.5, CLS, SEP, random.Random(7))
    ]
    assert run() == run()


def test_random_below_draws_what_randrange_draws():
    """The pairing loop's shortcut must keep GB-style draws: the same numbers, same state."""
    from pipeline.instances import random_below

    for seed in range(20):
        ours, theirs = random.Random(seed), random.Random(seed)
        for n in [1, 2, 3, 5, 7, 8, 100, 125, 1000, 2**31 - 1, 2**40 + 3, *range(1, 300)]:
            assert random_below(ours.getrandbits, n) == theirs.randrange(n)
            assert 1 + random_below(ours.getrandbits, n) == theirs.randint(1, n)
        assert ours.getstate() == theirs.getstate()
    with pytest.raises(ValueError, match="Empty range"):
        random_below(random.Random(0).getrandbits, 0)

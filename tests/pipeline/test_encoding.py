"""Batch encoding: the records equal masking and serializing each instance on its own."""

from __future__ import annotations

import random

import numpy as np
import pytest

from bert_keras import records
from pipeline.encoding import EncodedCounts, EncodingConfig, PendingInstance, encode_instances
from pipeline.masking import candidate_positions, create_masked_lm_predictions, masking_draws

CLS, SEP, MASK, VOCAB = 2, 3, 4, 3000


def _one_record(ids, num_a, label, masked, spec: records.RecordSpec) -> bytes:
    """The record of one instance, from its features spelled out one by one."""
    length = len(ids)
    pad = spec.max_seq_length - length
    segments = [0] * length
    if num_a is not None:
        segments = [0] * (num_a + 2) + [1] * (length - num_a - 2)
    seen = masked.output_ids if masked is not None else ids
    features = {
        records.INPUT_IDS: seen.tolist() + [0] * pad,
        records.INPUT_MASK: [1] * length + [0] * pad,
        records.SEGMENT_IDS: segments + [0] * pad,
    }
    if spec.has_masked_lm:
        slots = spec.max_predictions_per_seq - len(masked.positions)
        features[records.MASKED_LM_POSITIONS] = masked.positions.tolist() + [0] * slots
        features[records.MASKED_LM_IDS] = masked.label_ids.tolist() + [0] * slots
        features[records.MASKED_LM_WEIGHTS] = [1.0] * len(masked.positions) + [0.0] * slots
    if spec.has_next_sentence:
        features[records.NEXT_SENTENCE_LABELS] = [label]
    return records.serialize_example(features, spec)


def _instances(seed: int, count: int, width: int, pairs: bool, premasked: bool, config):
    """Random instances with their expected masking (drawn from the same rng state)."""
    rng, draw_rng = np.random.default_rng(seed), random.Random(seed)
    pending, expected = [], []
    for _ in range(count):
        length = int(rng.integers(4, width + 1))
        ids = rng.integers(5, VOCAB, length).astype(np.int32)
        ids[0] = CLS
        ids[-1] = SEP
        num_a, candidates = None, None
        if pairs:
            num_a = int(rng.integers(1, length - 2))
            ids[num_a + 1] = SEP
        else:
            candidates = np.arange(1, length - 1)
        masked = None
        if config.has_masked_lm:
            state = draw_rng.getstate()
            masked = create_masked_lm_predictions(
                ids,
                num_a or 0,
                config.masked_lm_prob,
                config.max_predictions_per_seq,
                VOCAB,
                MASK,
                draw_rng,
                candidates=candidates,
            )
            if not premasked:
                draw_rng.setstate(state)
        draws = masking_draws(draw_rng, length) if config.has_masked_lm and not premasked else None
        label = int(rng.integers(0, 2)) if config.has_next_sentence else None
        pair = (ids[1 : num_a + 1], ids[num_a + 2 : -1]) if pairs else None
        pending.append(
            PendingInstance(
                pair,
                None if pairs else ids,
                label,
                candidates,
                draws,
                masked if premasked else None,
            )
        )
        expected.append((ids, num_a, label, masked))
    return pending, expected


@pytest.mark.parametrize(
    "pairs,premasked,has_masked_lm,bins",
    [
        (True, False, True, ()),
        (True, True, True, ()),
        (True, False, True, (16, 40, 64)),
        (False, False, True, (32, 64)),
        (False, False, False, ()),
        (True, False, False, (20, 64)),
    ],
)
def test_records_equal_the_per_instance_path(pairs, premasked, has_masked_lm, bins):
    config = EncodingConfig(
        max_seq_length=64,
        cls_id=CLS,
        sep_id=SEP,
        max_predictions_per_seq=7,
        masked_lm_prob=0.15,
        vocab_size=VOCAB,
        mask_id=MASK,
        has_masked_lm=has_masked_lm,
        has_next_sentence=pairs,
        bins=bins,
    )
    pending, expected = _instances(7, 300, 64, pairs, premasked, config)
    counts = EncodedCounts()
    encoded = list(encode_instances(pending, config, counts, batch_size=37))
    assert len(encoded) == len(expected)
    for (bound, record), (ids, num_a, label, masked) in zip(encoded, expected, strict=True):
        assert bound == min(b for b in config.record_lengths() if b >= len(ids))
        spec = records.RecordSpec(bound, 7, has_masked_lm, pairs)
        assert record == _one_record(ids, num_a, label, masked, spec)
    assert counts.tokens == sum(len(ids) for ids, *_ in expected)
    masked_total = sum(len(m.positions) for *_, m in expected if m is not None)
    assert counts.masked_tokens == masked_total
    assert sum(entry.instances for entry in counts.per_length.values()) == len(expected)
    assert sum(entry.masked_tokens for entry in counts.per_length.values()) == masked_total
    assert sum(entry.random_next for entry in counts.per_length.values()) == sum(
        label or 0 for _, _, label, _ in expected
    )


def test_pair_candidates_are_gbs():
    """Batch masking never picks [CLS] or a [SEP] of the pair layout."""
    config = EncodingConfig(128, CLS, SEP, 20, 0.5, VOCAB, MASK, True, True)
    pending, expected = _instances(3, 200, 128, True, False, config)
    encoded = list(encode_instances(pending, config, EncodedCounts()))
    for (_, record), (ids, num_a, _, _) in zip(encoded, expected, strict=True):
        parsed = records.parse_example(record)
        count = int(parsed[records.MASKED_LM_WEIGHTS].sum())
        positions = set(parsed[records.MASKED_LM_POSITIONS][:count].tolist())
        assert not positions & {0, num_a + 1, len(ids) - 1}
        assert positions <= set(candidate_positions(len(ids), num_a).tolist())
        assert parsed[records.SEGMENT_IDS][: len(ids)].tolist() == [0] * (num_a + 2) + [1] * (
            len(ids) - num_a - 2
        )


def test_bad_batches_are_named():
    config = EncodingConfig(16, CLS, SEP, 3, 0.15, VOCAB, MASK, True, True)
    pair = (np.zeros(3, np.int32), np.zeros(4, np.int32))
    too_long = PendingInstance(None, np.zeros(17, np.int32), 0, None, b"\0" * 12 * 17, None)
    with pytest.raises(ValueError, match="17 tokens is longer than 16"):
        list(encode_instances([too_long], config, EncodedCounts()))
    unmasked = PendingInstance(pair, None, 0, None, None, None)
    with pytest.raises(ValueError, match="masking draws"):
        list(encode_instances([unmasked], config, EncodedCounts()))
    no_label = PendingInstance(pair, None, None, None, b"\0" * 120, None)
    with pytest.raises(ValueError, match="next-sentence labels"):
        list(encode_instances([no_label], config, EncodedCounts()))
    both = PendingInstance(pair, np.zeros(10, np.int32), 0, None, b"\0" * 120, None)
    with pytest.raises(ValueError, match="either a pair"):
        list(encode_instances([both], config, EncodedCounts()))

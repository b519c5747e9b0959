import numpy as np
import pytest
import tensorflow as tf

from bert_keras import records
from bert_keras.training import dynamic_masking
from tests.bert_keras.training import record_utils

VOCAB = 200
SPEC = records.RecordSpec(max_seq_length=64, max_predictions_per_seq=12, has_masked_lm=False)
CONFIG = dynamic_masking.MaskingConfig(
    vocab_size=VOCAB,
    mask_id=record_utils.MASK,
    special_ids=(0, 1, 2, 3, 4),
    max_predictions_per_seq=SPEC.max_predictions_per_seq,
)


def _batch(num, seed=0, spec=SPEC):
    rng = np.random.default_rng(seed)
    rows = [record_utils.make_instance(rng, spec, VOCAB) for _ in range(num)]
    return {
        name: tf.constant(
            np.array([r[name] for r in rows]),
            tf.float32 if name == records.MASKED_LM_WEIGHTS else tf.int32,
        )
        for name in rows[0]
    }


def test_policy_statistics_and_special_tokens():
    features = _batch(400)
    out = {
        k: v.numpy()
        for k, v in dynamic_masking.mask_batch(features, CONFIG, tf.constant([7, 1])).items()
    }
    original = features[records.INPUT_IDS].numpy()
    weights, positions, ids = (
        out[records.MASKED_LM_WEIGHTS],
        out[records.MASKED_LM_POSITIONS],
        out[records.MASKED_LM_IDS],
    )
    num_tokens = features[records.INPUT_MASK].numpy().sum(1)
    expected = np.minimum(12, np.maximum(1, np.round(num_tokens * 0.15))).astype(int)
    np.testing.assert_array_equal(weights.sum(1), expected)  # GB's count per sequence.
    chosen = weights > 0
    rows = np.nonzero(chosen)[0]
    cols = positions[chosen]
    # Never special tokens, never padding; positions ascending, labels are the originals.
    assert not np.isin(original[rows, cols], CONFIG.special_ids).any()
    np.testing.assert_array_equal(ids[chosen], original[rows, cols])
    for row in range(len(weights)):
        p = positions[row][weights[row] > 0]
        assert np.all(np.diff(p) > 0)
    # Unchosen positions untouched.
    changed = out[records.INPUT_IDS] != original
    chosen_mask = np.zeros_like(changed)
    chosen_mask[rows, cols] = True
    assert not (changed & ~chosen_mask).any()
    # 80 / 10 / 10 within 4 binomial standard deviations.
    new = out[records.INPUT_IDS][rows, cols]
    n = len(new)
    is_mask = new == record_utils.MASK
    kept = new == original[rows, cols]
    # A random id equal to the original counts as kept: expected share 0.1 + 0.1 / VOCAB.
    for share, p in ((is_mask.mean(), 0.8), (kept.mean(), 0.1 + 0.1 / VOCAB)):
        assert abs(share - p) < 4 * np.sqrt(p * (1 - p) / n), (share, p)
    # Random replacements cover the vocabulary (special ids included, as in GB).
    random = new[~is_mask & ~kept]
    assert len(np.unique(random)) > 0.5 * min(len(random), VOCAB)
    # Overall masking rate ~15% of tokens.
    assert abs(weights.sum() / num_tokens.sum() - 0.15) < 0.01


def test_same_seed_same_masks_other_seed_other_masks():
    features = _batch(8)
    a = dynamic_masking.mask_batch(features, CONFIG, tf.constant([1, 2]))
    b = dynamic_masking.mask_batch(features, CONFIG, tf.constant([1, 2]))
    c = dynamic_masking.mask_batch(features, CONFIG, tf.constant([1, 3]))
    np.testing.assert_array_equal(a[records.INPUT_IDS], b[records.INPUT_IDS])
    assert not np.array_equal(a[records.MASKED_LM_POSITIONS], c[records.MASKED_LM_POSITIONS])


def test_static_records_are_unmasked_first():
    static_spec = records.RecordSpec(max_seq_length=64, max_predictions_per_seq=12)
    rng_features = _batch(16, seed=3, spec=static_spec)
    plain = _batch(16, seed=3, spec=static_spec)
    restored = dynamic_masking.unmask_static(rng_features).numpy()
    assert not (restored == record_utils.MASK).any()
    # The restored ids are the masked ones put back: only masked positions changed.
    diff = restored != plain[records.INPUT_IDS].numpy()
    assert diff.sum() == int((plain[records.INPUT_IDS].numpy() == record_utils.MASK).sum())


def test_vocab_file(tmp_path):
    path = record_utils.write_vocab(str(tmp_path / "vocab.txt"), 50)
    config = dynamic_masking.MaskingConfig.from_vocab_file(path, max_predictions_per_seq=5)
    assert (config.vocab_size, config.mask_id, config.special_ids) == (50, 4, (0, 1, 2, 3, 4))
    (tmp_path / "bad.txt").write_text("a\nb\n")
    with pytest.raises(ValueError, match="lacks the tokens"):
        dynamic_masking.MaskingConfig.from_vocab_file(str(tmp_path / "bad.txt"), 5)

"""Dynamic masking (RoBERTa): new masked-LM targets every time a batch is read.

The policy is google-research/bert's (GB) `create_masked_lm_predictions`, the one the
pipeline writes into static records:
- candidates: real tokens (`input_mask` 1) other than the special ids ([CLS], [SEP],
  [PAD], [MASK], [UNK] by default);
- `num_to_predict = min(max_predictions_per_seq, max(1, round(num_tokens * masked_lm_prob)))`,
  `num_tokens` counting [CLS] and the [SEP]s, rounding halves to even (Python's `round`);
- each chosen position: 80% [MASK], 10% kept, 10% a random id drawn uniformly from the
  whole vocabulary;
- positions ascending, padded with 0, weights 1.0 / 0.0.

tensorflow_text's `mask_language_model` with `RandomItemSelector` and `MaskValuesChooser`
implements the same policy, but draws from stateful random ops (`random_shuffle`,
`random_uniform`); after a resume that skips to the step's batch those ops are not at the
same state, so the masks would differ from an uninterrupted run. Here every random draw is
a stateless op keyed by (seed, input pipeline, global batch index): batch k of a run is
masked the same way whenever it is read, and differently in every epoch.

Dimensions: B batch, T sequence, P max predictions per sequence.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from bert_keras import records

DEFAULT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclasses.dataclass(frozen=True)
class MaskingConfig:
    """What `mask_batch` needs to know about the vocabulary and the policy."""

    vocab_size: int
    mask_id: int
    special_ids: tuple[int, ...]
    max_predictions_per_seq: int
    masked_lm_prob: float = 0.15
    mask_token_rate: float = 0.8
    random_token_rate: float = 0.1

    @classmethod
    def from_vocab_file(cls, path: str, max_predictions_per_seq: int, **kwargs) -> MaskingConfig:
        """Reads the ids of [MASK] and the special tokens from a WordPiece vocab file."""
        if not tf.io.gfile.exists(path):
            raise ValueError(f"--vocab_file {path!r} does not exist.")
        with tf.io.gfile.GFile(path) as f:
            vocab = [line.rstrip("\n") for line in f]
        index = {token: i for i, token in enumerate(vocab)}
        missing = [t for t in ("[MASK]", "[CLS]", "[SEP]", "[PAD]") if t not in index]
        if missing:
            raise ValueError(f"--vocab_file {path!r} lacks the tokens {missing}.")
        special = tuple(sorted(index[t] for t in DEFAULT_SPECIAL_TOKENS if t in index))
        return cls(
            vocab_size=len(vocab),
            mask_id=index["[MASK]"],
            special_ids=special,
            max_predictions_per_seq=max_predictions_per_seq,
            **kwargs,
        )


def _scatter_rows(ids: tf.Tensor, positions: tf.Tensor, values: tf.Tensor, selected: tf.Tensor):
    """ids[b, positions[b, p]] = values[b, p] where selected[b, p]; (B, T) int32.

    A one-hot sum rather than `tensor_scatter_nd_update`: padding slots point at position 0
    and duplicate indices have no deterministic order there.
    """
    seq_length = tf.shape(ids)[1]
    one_hot = tf.one_hot(positions, seq_length, dtype=tf.int32)  # (B, P, T)
    one_hot *= tf.cast(selected, tf.int32)[:, :, None]
    hit = tf.reduce_sum(one_hot, axis=1) > 0  # (B, T)
    scattered = tf.reduce_sum(one_hot * values[:, :, None], axis=1)  # (B, T)
    return tf.where(hit, scattered, ids)


def unmask_static(features: dict[str, tf.Tensor]) -> tf.Tensor:
    """The original input_ids (B, T) of records that were masked statically."""
    selected = features[records.MASKED_LM_WEIGHTS] > 0  # (B, P)
    return _scatter_rows(
        features[records.INPUT_IDS],
        features[records.MASKED_LM_POSITIONS],
        features[records.MASKED_LM_IDS],
        selected,
    )


def mask_batch(features: dict[str, tf.Tensor], config: MaskingConfig, seed: tf.Tensor) -> dict:
    """Masks a decoded batch (see `records.decode_batch`) anew.

    Args:
        features: int32 `input_ids`, `input_mask`, `segment_ids` (B, T); if the records
            were masked statically, their masked_lm_* features are used to restore the
            original ids first. Other features (`next_sentence_labels`) pass through.
        config: vocabulary ids and policy.
        seed: int32/int64 (2,), the stateless seed of this batch.

    Returns: the features with `input_ids` masked and `masked_lm_positions`,
    `masked_lm_ids` (B, P) int32, `masked_lm_weights` (B, P) float32 set, as in static
    records.
    """
    num_predictions = config.max_predictions_per_seq
    ids = features[records.INPUT_IDS]  # (B, T)
    if records.MASKED_LM_POSITIONS in features:
        ids = unmask_static(features)
    input_mask = features[records.INPUT_MASK]  # (B, T)
    shape = tf.shape(ids)
    batch_size, seq_length = shape[0], shape[1]
    select_seed, action_seed, random_id_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    )

    special = tf.constant(config.special_ids, tf.int32)
    is_special = tf.reduce_any(ids[:, :, None] == special[None, None, :], axis=-1)  # (B, T)
    candidate = (input_mask > 0) & ~is_special  # (B, T)
    num_tokens = tf.reduce_sum(input_mask, axis=1)  # (B,)
    num_to_predict = tf.cast(
        tf.round(tf.cast(num_tokens, tf.float32) * config.masked_lm_prob), tf.int32
    )
    num_to_predict = tf.minimum(num_predictions, tf.maximum(1, num_to_predict))
    num_to_predict = tf.minimum(num_to_predict, tf.reduce_sum(tf.cast(candidate, tf.int32), 1))

    # A uniformly random subset of the candidates: the top-n of random scores.
    scores = tf.random.stateless_uniform((batch_size, seq_length), select_seed)  # (B, T)
    scores = tf.where(candidate, scores, -1.0)
    _, top_positions = tf.math.top_k(scores, k=num_predictions)  # (B, P)
    slot = tf.range(num_predictions)[None, :]  # (1, P)
    chosen = slot < num_to_predict[:, None]  # (B, P)
    # Ascending positions, padding (seq_length) last, then padding written as 0.
    positions = tf.sort(tf.where(chosen, top_positions, seq_length), axis=1)  # (B, P)
    selected = positions < seq_length  # (B, P)
    positions = tf.where(selected, positions, 0)

    original = tf.gather(ids, positions, batch_dims=1)  # (B, P)
    action = tf.random.stateless_uniform((batch_size, num_predictions), action_seed)  # (B, P)
    random_ids = tf.random.stateless_uniform(
        (batch_size, num_predictions), random_id_seed, 0, config.vocab_size, dtype=tf.int32
    )  # (B, P)
    keep_rate_end = config.mask_token_rate + (
        1.0 - config.mask_token_rate - config.random_token_rate
    )
    replacement = tf.where(
        action < config.mask_token_rate,
        config.mask_id,
        tf.where(action < keep_rate_end, original, random_ids),
    )  # (B, P)

    masked = dict(features)
    masked[records.INPUT_IDS] = _scatter_rows(ids, positions, replacement, selected)
    masked[records.MASKED_LM_POSITIONS] = positions
    masked[records.MASKED_LM_IDS] = tf.where(selected, original, 0)
    masked[records.MASKED_LM_WEIGHTS] = tf.cast(selected, tf.float32)
    return masked

"""The seeded batch order is a pure function of (seed, epoch), whatever iterators ran before."""

from __future__ import annotations

import random

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from bert_keras.training import seeding

N, B = 10, 4


def _batches(dataset, count):
    return [{k: v.numpy().tolist() for k, v in batch.items()} for batch in dataset.take(count)]


def test_every_epoch_is_a_permutation_and_rows_stay_together():
    x = np.arange(N, dtype=np.int32)
    dataset = seeding.shuffled_batches({"x": x, "y": x * 10}, B, seed=3)
    assert dataset.element_spec["x"].shape == (B,)
    batches = _batches(dataset, 3 * N // 2)  # 60 rows: 6 epochs of 10.
    xs = [v for batch in batches for v in batch["x"]]
    ys = [v for batch in batches for v in batch["y"]]
    assert ys == [10 * v for v in xs]  # Rows of the nest gathered together.
    epochs = [xs[i : i + N] for i in range(0, len(xs), N)]
    assert all(sorted(epoch) == list(range(N)) for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) > 1  # Reshuffled every epoch.
    # Epoch e is example_order over its positions.
    for e, epoch in enumerate(epochs):
        positions = tf.range(e * N, (e + 1) * N, dtype=tf.int64)
        assert seeding.example_order(positions, N, 3).numpy().tolist() == epoch


def test_order_depends_on_the_seed_only():
    x = np.arange(N)
    first = _batches(seeding.shuffled_batches({"x": x}, B, seed=3), 5)
    random.random(), np.random.rand(), tf.random.uniform([3]), keras.random.uniform([3])
    tf.random.set_seed(99)
    assert _batches(seeding.shuffled_batches({"x": x}, B, seed=3), 5) == first
    assert _batches(seeding.shuffled_batches({"x": x}, B, seed=4), 5) != first


def test_an_iterator_read_and_dropped_before_does_not_change_the_order():
    """The fine-tuning bug: Keras `fit` peeks with one iterator, trains with a second one.

    With `shuffle(N, seed, reshuffle_each_iteration=True).repeat()` the second iterator's
    order depended on how far the first one (and its prefetch thread) had read.
    """
    x = np.arange(N)
    dataset = seeding.shuffled_batches({"x": x}, B, seed=3).prefetch(8)
    want = _batches(dataset, 8)
    iterator = iter(dataset)
    for _ in range(12):  # Past several epoch boundaries.
        next(iterator)
    del iterator
    assert _batches(dataset, 8) == want


def test_shuffled_batches_rejects_empty_or_ragged_nests():
    with pytest.raises(ValueError, match="N > 0"):
        seeding.shuffled_batches({"x": np.zeros((0, 3))}, B, seed=1)
    with pytest.raises(ValueError, match="sizes"):
        seeding.shuffled_batches((np.zeros(3), np.zeros(4)), B, seed=1)


def test_seeded_run_sets_seeds_and_restores_policy_and_determinism():
    assert not tf_config.is_op_determinism_enabled()
    before = keras.config.dtype_policy().name
    draws = []
    for _ in range(2):
        with seeding.seeded_run(7, "mixed_bfloat16", deterministic=True):
            assert keras.config.dtype_policy().name == "mixed_bfloat16"
            assert tf_config.is_op_determinism_enabled()
            draws.append((random.random(), float(np.random.rand())))
        assert keras.config.dtype_policy().name == before
        assert not tf_config.is_op_determinism_enabled()
        random.random()  # Global state moves on between the runs.
    assert draws[0] == draws[1]
    with pytest.raises(RuntimeError), seeding.seeded_run(7, "mixed_float16"):
        raise RuntimeError("a failed run")
    assert keras.config.dtype_policy().name == before

"""Seeded training runs whose result does not depend on what ran before them.

`keras.utils.set_random_seed(seed)` fixes the initial weights and the dropout seed
generators (both drawn from Python's `random` when the model is built), but not the
order in which `model.fit` sees a shuffled in-memory dataset:
`Dataset.shuffle(n, seed, reshuffle_each_iteration=True).repeat()` draws each pass's
order from a seed-generator resource that every iterator opened on the dataset shares.
Keras 3's `fit` opens two: one to peek at a batch (it builds the loss and metrics on its
shapes) and, after throwing that one away, the training iterator. The discarded
iterator's `prefetch` thread keeps reading, past the end of the first pass when the set
is small, and takes seeds from the shared generator; how many depends on thread timing,
so the training order (and the trained weights) differed between two runs with the
same seed, in one process or across processes.

`shuffled_batches` makes the order a pure function of (seed, epoch, position): epoch e
is the permutation `RandomIndexShuffle(., key=(seed, e, 0))`, stateless, so any number of
iterators see the same batches. `seeded_run` sets the seeds, dtype policy and op
determinism of one run and puts the process-wide ones back afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import tensorflow as tf
from tensorflow.python.framework import config as tf_config


def example_order(positions: tf.Tensor, num_examples: int, seed: int) -> tf.Tensor:
    """Example index at each position of the endless seeded stream.

    positions: (B,) int64, position p is example number p % N of epoch p // N.
    Returns (B,) int64 in [0, N): epoch e is the permutation keyed by (seed, e).
    """
    positions = tf.cast(positions, tf.int64)
    epoch = positions // num_examples  # (B,)
    key = tf.fill(tf.shape(epoch), tf.constant(seed, tf.int64))  # (B,)
    # The raw op: its key is (B, 3); tf.random.experimental.index_shuffle pads a (B, 2)
    # seed along the wrong axis in TF 2.21.
    return tf.raw_ops.RandomIndexShuffle(
        index=positions % num_examples,
        seed=tf.stack([key, epoch, tf.zeros_like(epoch)], -1),  # (B, 3)
        max_index=tf.constant(num_examples - 1, tf.int64),
        rounds=4,
    )


def shuffled_batches(tensors: Any, batch_size: int, seed: int) -> tf.data.Dataset:
    """Endless batches of `tensors` (a nest of arrays, all with the same first dimension
    N), reshuffled every epoch, the same for every iterator opened on the dataset.

    Batches run across epoch boundaries, as `shuffle(N).repeat().batch(B)` does; the
    stream is endless, so every batch has B rows (a static batch dimension).
    """
    tensors = tf.nest.map_structure(tf.convert_to_tensor, tensors)
    sizes = {int(t.shape[0]) for t in tf.nest.flatten(tensors)}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"shuffled_batches needs N > 0 rows in every array, got sizes {sizes}.")
    (num_examples,) = sizes

    def gather(positions):  # (B,) int64
        index = example_order(positions, num_examples, seed)  # (B,)
        return tf.nest.map_structure(lambda t: tf.gather(t, index), tensors)

    positions = tf.data.Dataset.counter(dtype=tf.int64).batch(batch_size, drop_remainder=True)
    return positions.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


@contextlib.contextmanager
def seeded_run(seed: int, dtype_policy: str = "float32", deterministic: bool = False) -> Iterator:
    """Python, NumPy, TF and Keras seeds set to `seed`, `dtype_policy` as Keras's global
    policy and, if asked, op determinism, for the duration of the block; the previous
    policy and determinism setting are restored afterwards, so a later run in the same
    process is unaffected."""
    policy = keras.config.dtype_policy()
    was_deterministic = tf_config.is_op_determinism_enabled()
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.config.set_dtype_policy(dtype_policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(policy)
        if deterministic and not was_deterministic:
            tf_config.disable_op_determinism()

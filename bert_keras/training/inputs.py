"""The pretraining input: a deterministic function of (seed, worker, step).

Resuming after preemption needs the input position. Two ways exist: checkpoint the
`tf.data` iterator, or rebuild the same stream and skip what was consumed. We skip:
- with `distribute_datasets_from_function` under MultiWorkerMirroredStrategy only the
  chief's checkpoint is kept (other workers write to scratch), so the other workers'
  iterator state would be lost, and TPU strategies cannot save iterators at all;
- an iterator checkpoint holds the shuffle buffer (10,000 serialized records) in every
  checkpoint.
So each input pipeline reads its files in an order fixed by the seed, shuffles with a
fixed seed, and on resume skips `step * batches per step` batches of serialized records
(before parsing and masking, so the skip only reads). Dynamic masks are keyed by the
global batch index and are therefore the same after a resume.

Dimensions: B per-replica batch, T sequence, P max predictions per sequence.
"""

from __future__ import annotations

import tensorflow as tf

from bert_keras import records
from bert_keras.training import dynamic_masking


def check_records(
    files: list[str], spec: records.RecordSpec, dynamic: bool, vocab_size: int | None = None
) -> records.RecordSpec:
    """Checks the first record against the flags (and its ids against the model's
    `vocab_size`); returns the spec to parse with.

    Raises a ValueError naming the file and flag when lengths or features disagree.
    """
    first = files[0]
    try:
        serialized = next(
            iter(tf.data.TFRecordDataset(first, records.compression_type(first)).take(1))
        ).numpy()
    except StopIteration:
        raise ValueError(f"{first}: no records (empty file) in --input_file.") from None
    except tf.errors.DataLossError as e:
        raise ValueError(f"{first}: not a TFRecord file ({e.message}).") from e
    found = records.spec_from_record(serialized)
    if found.max_seq_length != spec.max_seq_length:
        raise ValueError(
            f"{first}: records have max_seq_length {found.max_seq_length}, but "
            f"--max_seq_length={spec.max_seq_length}."
        )
    if not dynamic and not found.has_masked_lm:
        raise ValueError(
            f"{first}: records carry no masked_lm_* features (written for dynamic masking); "
            "use --masking=dynamic."
        )
    if (
        found.has_masked_lm
        and not dynamic
        and (found.max_predictions_per_seq != spec.max_predictions_per_seq)
    ):
        raise ValueError(
            f"{first}: records have max_predictions_per_seq {found.max_predictions_per_seq}, "
            f"but --max_predictions_per_seq={spec.max_predictions_per_seq}."
        )
    if vocab_size is not None:
        parsed = records.parse_example(serialized)
        ids = [parsed[records.INPUT_IDS]]
        if records.MASKED_LM_IDS in parsed:
            ids.append(parsed[records.MASKED_LM_IDS])
        largest = int(max(i.max() for i in ids))
        if largest >= vocab_size:
            raise ValueError(
                f"{first}: token id {largest} is outside the model's vocab_size {vocab_size}; "
                "were the records written with another vocabulary?"
            )
    return found


def pretraining_dataset(
    files: list[str],
    spec: records.RecordSpec,
    batch_size: int,
    *,
    seed: int,
    skip_batches: int = 0,
    masking: dynamic_masking.MaskingConfig | None = None,
    input_context: tf.distribute.InputContext | None = None,
    shuffle_buffer_size: int = 10_000,
    cycle_length: int = 8,
) -> tf.data.Dataset:
    """Endless batches `(inputs, labels)` of `records.to_model_inputs`, per input pipeline.

    Args:
        files: record files (all workers' list; each takes its share by file).
        spec: the records' spec (`check_records`).
        batch_size: per-replica batch size.
        seed: fixes the file order, the shuffle and the dynamic masks.
        skip_batches: batches of this pipeline already consumed (resume).
        masking: dynamic masking config, or None for static masks from the records.
        input_context: from `distribute_datasets_from_function`.
    """
    pipeline_id, num_pipelines = 0, 1
    if input_context is not None:
        pipeline_id = input_context.input_pipeline_id
        num_pipelines = input_context.num_input_pipelines
    if len(files) < num_pipelines:
        raise ValueError(
            f"{len(files)} record files cannot be sharded over {num_pipelines} workers; "
            "write at least as many shards as workers."
        )
    dataset = tf.data.Dataset.from_tensor_slices(files)
    dataset = dataset.shard(num_pipelines, pipeline_id)
    dataset = dataset.shuffle(len(files), seed=seed + pipeline_id).repeat()
    compression = records.compression_type(files[0])
    dataset = dataset.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type=compression),
        cycle_length=min(cycle_length, -(-len(files) // num_pipelines)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    dataset = dataset.shuffle(shuffle_buffer_size, seed=seed + pipeline_id)
    if skip_batches:
        dataset = dataset.skip(skip_batches * batch_size)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.enumerate(start=skip_batches)

    def decode(batch_index, serialized):
        features = records.decode_batch(serialized, spec)
        if masking is not None:
            batch_seed = tf.random.experimental.stateless_fold_in(
                tf.constant([seed, pipeline_id], tf.int64), batch_index
            )
            features = dynamic_masking.mask_batch(features, masking, batch_seed)
        return records.to_model_inputs(features)

    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.deterministic = True
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)

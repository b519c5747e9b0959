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

Length bins (`create_pretraining_data --length_bins`): files of several record lengths
are grouped by their spec (`group_records`); each group is its own stream of batches as
above, and `tf.data.Dataset.sample_from_datasets` (seeded) picks the group of each batch,
with weights proportional to the groups' estimated record counts. The pick happens on
batches of serialized records and the skip after it, so a resume still only reads, and
every batch has one length (the train step sees (B, None) and is traced once).

Dimensions: B per-replica batch, T sequence, P max predictions per sequence.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import struct
import zlib

import tensorflow as tf

from bert_keras import records
from bert_keras.training import dynamic_masking

logger = logging.getLogger(__name__)


def check_records(
    files: list[str],
    spec: records.RecordSpec,
    dynamic: bool,
    vocab_size: int | None = None,
    allow_shorter: bool = False,
) -> records.RecordSpec:
    """Checks the first record against the flags (and its ids against the model's
    `vocab_size`); returns the spec to parse with.

    `allow_shorter`: records shorter than --max_seq_length are accepted (a length bin).
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
    if found.max_seq_length > spec.max_seq_length or (
        found.max_seq_length != spec.max_seq_length and not allow_shorter
    ):
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
    if dynamic and found.max_seq_length < spec.max_predictions_per_seq:
        raise ValueError(
            f"{first}: records of max_seq_length {found.max_seq_length} are shorter than "
            f"--max_predictions_per_seq={spec.max_predictions_per_seq} (dynamic masking)."
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


@dataclasses.dataclass(frozen=True)
class RecordGroup:
    """Record files of one spec (a length bin) and their estimated number of records."""

    spec: records.RecordSpec
    files: tuple[str, ...]
    num_records: float


def _first_record(path: str) -> bytes | None:
    """The first serialized record of `path`, None if it has none."""
    try:
        for record in tf.data.TFRecordDataset(path, records.compression_type(path)).take(1):
            return record.numpy()
    except tf.errors.DataLossError as e:
        raise ValueError(f"{path}: not a TFRecord file ({e.message}).") from e
    return None


def _count_records(head: bytes, gzip: bool) -> int:
    """Complete TFRecords (length u64, crc u32, data, crc u32) at the start of `head`."""
    data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head) if gzip else head
    count, position = 0, 0
    while position + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[position : position + 8])
        position += 12 + length + 4
        if position > len(data):
            break
        count += 1
    return count


def estimate_num_records(files: tuple[str, ...], sample_bytes: int = 1 << 20) -> float:
    """The number of records in `files` without reading them all: exact when they hold no
    more than `sample_bytes` together, else their total size times the records per
    (compressed) byte of the first `sample_bytes` of the first file (the records of a
    length bin are all about the same size; GZIP ratios vary a little between files)."""
    sizes = [tf.io.gfile.stat(path).length for path in files]

    def head(path: str, size: int) -> bytes:
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read(size)

    if sum(sizes) <= sample_bytes:
        return float(sum(_count_records(head(p, sample_bytes), p.endswith(".gz")) for p in files))
    sample = head(files[0], sample_bytes)
    count = _count_records(sample, files[0].endswith(".gz"))
    if not count:  # One huge record: at least one per file (`_first_record` found it).
        return float(len(files))
    return count / len(sample) * sum(sizes)


def group_records(files: list[str], max_workers: int = 16) -> list[RecordGroup]:
    """Groups `files` by the spec of their first record, shortest records first; files
    without records are left out (logged). Reads one record per file (in parallel)."""
    with concurrent.futures.ThreadPoolExecutor(min(max_workers, len(files))) as pool:
        firsts = list(pool.map(_first_record, files))
    by_spec: dict[records.RecordSpec, list[str]] = {}
    empty = []
    for path, serialized in zip(files, firsts, strict=True):
        if serialized is None:
            empty.append(path)
            continue
        by_spec.setdefault(records.spec_from_record(serialized), []).append(path)
    if not by_spec:
        raise ValueError(f"{files[0]}: no records (empty file) in --input_file.")
    if empty:
        logger.warning("%d record files without records left out, e.g. %s", len(empty), empty[0])
    return [
        RecordGroup(spec, tuple(group), estimate_num_records(tuple(group)))
        for spec, group in sorted(by_spec.items(), key=lambda item: item[0].max_seq_length)
    ]


def check_record_groups(
    files: list[str], spec: records.RecordSpec, dynamic: bool, vocab_size: int | None = None
) -> list[RecordGroup]:
    """`check_records` per group of `group_records`: one group must have exactly the flags'
    lengths; several (length bins) may be shorter than --max_seq_length, the longest equal
    to it, and must agree in every other respect. Returns the groups, specs as parsed."""
    groups = group_records(files)
    several = len(groups) > 1
    checked = [
        dataclasses.replace(
            group,
            spec=check_records(list(group.files), spec, dynamic, vocab_size, allow_shorter=several),
        )
        for group in groups
    ]
    if several:
        longest = checked[-1]
        if longest.spec.max_seq_length != spec.max_seq_length:
            raise ValueError(
                f"{longest.files[0]}: the longest records of --input_file have max_seq_length "
                f"{longest.spec.max_seq_length}, but --max_seq_length={spec.max_seq_length}."
            )
        for group in checked[:-1]:
            if dataclasses.replace(group.spec, max_seq_length=0) != dataclasses.replace(
                longest.spec, max_seq_length=0
            ):
                raise ValueError(
                    f"--input_file mixes records of different features: {group.files[0]} "
                    f"({group.spec}) and {longest.files[0]} ({longest.spec})."
                )
    return checked


def _serialized_records(
    files: list[str] | tuple[str, ...],
    seed: int,
    pipeline_id: int,
    num_pipelines: int,
    shuffle_buffer_size: int,
    cycle_length: int,
) -> tf.data.Dataset:
    """Endless serialized records of this pipeline's share of `files`, in a seeded order."""
    if len(files) < num_pipelines:
        raise ValueError(
            f"{len(files)} record files cannot be sharded over {num_pipelines} workers; "
            "write at least as many shards as workers."
        )
    dataset = tf.data.Dataset.from_tensor_slices(list(files))
    dataset = dataset.shard(num_pipelines, pipeline_id)
    dataset = dataset.shuffle(len(files), seed=seed + pipeline_id).repeat()
    compression = records.compression_type(files[0])
    dataset = dataset.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type=compression),
        cycle_length=min(cycle_length, -(-len(files) // num_pipelines)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return dataset.shuffle(shuffle_buffer_size, seed=seed + pipeline_id)


def _pipeline_of(input_context: tf.distribute.InputContext | None) -> tuple[int, int]:
    if input_context is None:
        return 0, 1
    return input_context.input_pipeline_id, input_context.num_input_pipelines


def _finish(
    dataset: tf.data.Dataset,
    decode_records,
    seed: int,
    pipeline_id: int,
    masking: dynamic_masking.MaskingConfig | None,
) -> tf.data.Dataset:
    """(batch index, serialized (B,)) -> (inputs, labels), masked per batch index."""

    def decode(batch_index, serialized):
        features = decode_records(serialized)
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
    pipeline_id, num_pipelines = _pipeline_of(input_context)
    dataset = _serialized_records(
        files, seed, pipeline_id, num_pipelines, shuffle_buffer_size, cycle_length
    )
    if skip_batches:
        dataset = dataset.skip(skip_batches * batch_size)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.enumerate(start=skip_batches)
    return _finish(
        dataset,
        lambda serialized: records.decode_batch(serialized, spec),
        seed,
        pipeline_id,
        masking,
    )


def decode_any_length(serialized: tf.Tensor, spec: records.RecordSpec) -> dict[str, tf.Tensor]:
    """`records.decode_batch` for a batch (B,) of records of one length that `spec` does
    not fix: the sequence features come out (B, T) with T the records' length."""
    parsing = spec.parsing_spec()
    for name in records.SEQUENCE_FEATURES:
        parsing[name] = tf.io.FixedLenSequenceFeature([], tf.int64, allow_missing=True)
    parsed = tf.io.parse_example(serialized, parsing)
    return {
        name: tf.cast(value, tf.int32) if value.dtype == tf.int64 else value
        for name, value in parsed.items()
    }


def binned_pretraining_dataset(
    groups: list[RecordGroup],
    batch_size: int,
    *,
    seed: int,
    skip_batches: int = 0,
    masking: dynamic_masking.MaskingConfig | None = None,
    input_context: tf.distribute.InputContext | None = None,
    shuffle_buffer_size: int = 10_000,
    cycle_length: int = 8,
) -> tf.data.Dataset:
    """`pretraining_dataset` over record files of several lengths (`check_record_groups`).

    Each group is an endless stream of batches of its serialized records (its own file
    order and shuffle, seeded); `sample_from_datasets` picks the group of each batch,
    seeded, with weights proportional to the groups' `num_records`, so every batch holds
    records of one length and the groups are read at the same rate as their records are
    written. The skip of a resume comes after the pick and before any parsing: it reads
    only. Batches are (B, T) with T the batch's group's length (element shape (B, None)).
    """
    pipeline_id, num_pipelines = _pipeline_of(input_context)
    batches = [
        _serialized_records(
            group.files,
            seed + 1_000_003 * index,  # Each group its own shuffle.
            pipeline_id,
            num_pipelines,
            shuffle_buffer_size,
            cycle_length,
        ).batch(batch_size, drop_remainder=True)
        for index, group in enumerate(groups)
    ]
    total = sum(group.num_records for group in groups)
    dataset = tf.data.Dataset.sample_from_datasets(
        batches, weights=[group.num_records / total for group in groups], seed=seed + pipeline_id
    )
    if skip_batches:
        dataset = dataset.skip(skip_batches)
    dataset = dataset.enumerate(start=skip_batches)
    spec = dataclasses.replace(groups[-1].spec, max_seq_length=0)  # Only its features count.
    return _finish(
        dataset, lambda serialized: decode_any_length(serialized, spec), seed, pipeline_id, masking
    )

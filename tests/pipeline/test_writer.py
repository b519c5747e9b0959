"""WriteShards: fixed shard counts written in two phases, contents by hash, nothing left over."""

from __future__ import annotations

import collections
import glob
import os

import apache_beam as beam
import pytest
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.writer import WriteShards, shard_of

IN_PROCESS = ["--runner=DirectRunner"]


def _records(n: int) -> list[bytes]:
    # Duplicates on purpose: the write keeps a multiset.
    return [f"record {i % (n - 3)} ".encode() * (1 + i % 7) for i in range(n)]


def _read(path: str) -> list[bytes]:
    compression = "GZIP" if path.endswith(".gz") else None
    return [r.numpy() for r in tf.data.TFRecordDataset(path, compression)]


def _write(prefix: str, values: list[bytes], num_shards: int, compression="NONE", args=None):
    with beam.Pipeline(options=PipelineOptions(args or IN_PROCESS)) as p:
        _ = p | beam.Create(values, reshuffle=True) | WriteShards(prefix, num_shards, compression)
    return sorted(glob.glob(prefix + "-*"))


@pytest.mark.parametrize("compression", ["NONE", "GZIP"])
def test_fixed_shards_hold_every_record_once_by_hash(tmp_path, compression):
    values = _records(500)
    prefix = str(tmp_path / "out" / "data")
    files = _write(prefix, values, 5, compression)
    suffix = ".tfrecord.gz" if compression == "GZIP" else ".tfrecord"
    assert [os.path.basename(f) for f in files] == [
        f"data-{i:05d}-of-00005{suffix}" for i in range(5)
    ]
    written = []
    for index, path in enumerate(files):
        shard = _read(path)
        assert shard, path
        assert {shard_of(r, 5) for r in shard} == {index}
        written += shard
    assert collections.Counter(written) == collections.Counter(values)
    # The temporary files are gone; only the shards remain.
    assert sorted(os.listdir(tmp_path / "out")) == [os.path.basename(f) for f in files]


def test_more_shards_than_records_writes_empty_shards(tmp_path):
    values = [b"a", b"b", b"c"]
    files = _write(str(tmp_path / "d"), values, 8)
    assert len(files) == 8
    contents = [_read(f) for f in files]
    assert sum(len(c) for c in contents) == 3
    assert sum(not c for c in contents) >= 5


def test_no_records_still_writes_every_shard(tmp_path):
    files = _write(str(tmp_path / "d"), [], 3)
    assert [_read(f) for f in files] == [[], [], []]


def test_runner_chosen_count_uses_beams_writer(tmp_path):
    values = _records(50)
    files = _write(str(tmp_path / "d"), values, 0)
    assert files and all(f.endswith(".tfrecord") for f in files)
    assert collections.Counter(r for f in files for r in _read(f)) == collections.Counter(values)


@pytest.mark.slow
def test_shards_are_the_same_with_two_worker_processes(tmp_path):
    values = _records(2000)
    in_process = _write(str(tmp_path / "a" / "d"), values, 3)
    two_workers = _write(
        str(tmp_path / "b" / "d"),
        values,
        3,
        args=[
            "--runner=DirectRunner",
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=2",
        ],
    )
    assert len(in_process) == len(two_workers) == 3
    for a, b in zip(in_process, two_workers, strict=True):
        assert sorted(_read(a)) == sorted(_read(b))
    assert sorted(os.listdir(tmp_path / "b")) == [os.path.basename(f) for f in two_workers]

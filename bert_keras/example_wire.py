"""Serializes a batch of `tf.train.Example`s in NumPy, byte for byte as protobuf does.

Why: building and serializing one Example per instance through protobuf costs ~50 us of
Python (filling repeated fields from lists, then `SerializeToString`), the largest cost of
the data pipeline's hot path. A per-record pure-Python wire encoder was slower still. Here
the whole batch is encoded at once: every varint of every record is computed as a NumPy
array, each part of the wire format (tags, length prefixes, payloads) becomes a block of
columns with a mask of the bytes it uses, and one `np.compress` packs every record's bytes
end to end (`benchmarks/pipeline_throughput.py`; `tests/bert_keras/test_example_wire.py`
checks the bytes against `SerializeToString(deterministic=True)`).

Wire format (tf.train.Example, proto3, packed repeated fields):

    Example   = 0x0A len Features
    Features  = (0x0A len MapEntry)*            entries sorted by key (deterministic)
    MapEntry  = 0x0A len key  0x12 len Feature
    Feature   = 0x12 len FloatList | 0x1A len Int64List
    FloatList = 0x0A len float32-LE*            (nothing when empty)
    Int64List = 0x0A len varint*                (nothing when empty)

Dimension legend: N records, K values of a feature, W bytes of the widest varint, C columns.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

_LENGTH_DELIMITED_1 = 0x0A  # field 1, wire type 2
_LENGTH_DELIMITED_2 = 0x12  # field 2, wire type 2
_LENGTH_DELIMITED_3 = 0x1A  # field 3, wire type 2

# A block of columns: (bytes (N, C) uint8, used (N, C) bool). Row r's bytes are
# bytes[r][used[r]], in column order.
Block = tuple[np.ndarray, np.ndarray]


def _unsigned(values: np.ndarray) -> np.ndarray:
    """Values as protobuf encodes them: uint32 when every value fits (cheaper), else the
    uint64 two's complement (a negative int64 takes 10 bytes)."""
    values = np.asarray(values)
    if values.size and values.min() >= 0 and values.max() < 2**32:
        return values.astype(np.uint32)
    return values.astype(np.int64).view(np.uint64)


def varint_sizes(values: np.ndarray) -> np.ndarray:
    """Bytes of each value's varint. Same shape as `values`, int64."""
    return _unsigned_sizes(_unsigned(values))


def _unsigned_sizes(unsigned: np.ndarray) -> np.ndarray:
    """`varint_sizes` of values already made unsigned by `_unsigned`."""
    sizes = np.ones(unsigned.shape, np.int64)
    shift = 7
    while shift < 64 and unsigned.size and int(unsigned.max()) >> shift:
        sizes += unsigned >= unsigned.dtype.type(1 << shift)
        shift += 7
    return sizes


def varint_block(values: np.ndarray) -> tuple[Block, np.ndarray]:
    """values (N, K) int -> (the block of their varints (N, K * W), bytes per row (N,))."""
    num_rows, num_values = values.shape
    unsigned = _unsigned(values)  # (N, K)
    sizes = _unsigned_sizes(unsigned)  # (N, K)
    width = int(sizes.max()) if sizes.size else 1
    if width == 1:  # Every value < 128: the varint is the value's byte.
        block = (unsigned.astype(np.uint8), np.ones((num_rows, num_values), bool))
        return block, np.full(num_rows, num_values, np.int64)
    # One contiguous uint8 plane per byte, interleaved once (strided writes measured 3x slower).
    kind = unsigned.dtype.type
    planes, used_planes = [], [np.ones(sizes.shape, bool)]
    for byte in range(width):  # 7 bits a byte, low first; the high bit: more bytes follow.
        more = sizes > byte + 1  # (N, K)
        group = ((unsigned >> kind(7 * byte)) & kind(0x7F)).astype(np.uint8)
        planes.append(group | (more.view(np.uint8) << np.uint8(7)))
        if byte + 1 < width:
            used_planes.append(more)
    groups = np.stack(planes, axis=-1)  # (N, K, W)
    used = np.stack(used_planes, axis=-1)  # (N, K, W)
    block = (
        groups.reshape(num_rows, num_values * width),
        used.reshape(num_rows, num_values * width),
    )
    return block, sizes.sum(axis=1)


def _varint_bytes(value: int) -> bytes:
    """One non-negative int's varint."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def constant_block(data: bytes, num_rows: int) -> Block:
    """The same bytes in every row."""
    row = np.frombuffer(data, np.uint8)
    shape = (num_rows, len(row))
    return np.broadcast_to(row, shape), np.broadcast_to(np.True_, shape)


def _field_header(prefix: bytes, lengths: np.ndarray) -> Block:
    """`prefix` (tags and constant bytes) then `varint(length)` per row (lengths (N,)): the
    head of a length-delimited field. One constant block when every row has the same length."""
    if lengths.min() == lengths.max():
        return constant_block(prefix + _varint_bytes(int(lengths[0])), len(lengths))
    head = constant_block(prefix, len(lengths))
    (data, used), _ = varint_block(lengths[:, None])
    return (
        np.concatenate([head[0], data], axis=1),
        np.concatenate([head[1], used], axis=1),
    )


def _with_header(size: np.ndarray) -> np.ndarray:
    """Bytes of a length-delimited field of `size` payload bytes: tag, length, payload."""
    return 1 + varint_sizes(size) + size


def _feature_blocks(name: str, values: np.ndarray) -> tuple[list[Block], np.ndarray]:
    """One map entry (key `name`, values (N, K)) -> its blocks and bytes per row (N,)."""
    num_rows, num_values = values.shape
    if values.dtype.kind == "f":
        payload = (
            values.astype("<f4").view(np.uint8),
            np.broadcast_to(np.True_, (num_rows, 4 * num_values)),
        )
        payload_size = np.full(num_rows, 4 * num_values, np.int64)
        kind_tag = _LENGTH_DELIMITED_2  # float_list
    elif values.dtype.kind in "iub":
        payload, payload_size = varint_block(values)
        kind_tag = _LENGTH_DELIMITED_3  # int64_list
    else:
        raise TypeError(f"Feature {name!r}: int or float values expected, got {values.dtype}.")
    key = name.encode("utf-8")
    # An empty packed field writes nothing: the list is then empty.
    list_size = _with_header(payload_size) if num_values else np.zeros(num_rows, np.int64)
    feature_size = _with_header(list_size)
    entry_size = 1 + len(_varint_bytes(len(key))) + len(key) + _with_header(feature_size)
    key_field = bytes([_LENGTH_DELIMITED_1]) + _varint_bytes(len(key)) + key
    blocks = [
        _field_header(bytes([_LENGTH_DELIMITED_1]), entry_size),
        _field_header(key_field + bytes([_LENGTH_DELIMITED_2]), feature_size),
        _field_header(bytes([kind_tag]), list_size),
    ]
    if num_values:
        blocks += [_field_header(bytes([_LENGTH_DELIMITED_1]), payload_size), payload]
    return blocks, _with_header(entry_size)


def serialize_examples(features: Mapping[str, np.ndarray]) -> list[bytes]:
    """Serializes N Examples: `features` maps names to (N, K) int or float arrays (float
    features are written as float32, int ones as int64). Equals, record by record,
    `tf.train.Example.SerializeToString(deterministic=True)` of the same features."""
    if not features:
        raise ValueError("No features to serialize.")
    num_rows = {len(values) for values in features.values()}
    if len(num_rows) != 1:
        raise ValueError(f"Features have different numbers of records: {sorted(num_rows)}.")
    (rows,) = num_rows
    if rows == 0:
        return []
    entries: list[Block] = []
    features_size = np.zeros(rows, np.int64)
    for name in sorted(features):  # deterministic=True sorts map entries by key.
        values = np.asarray(features[name])
        if values.ndim != 2:
            raise ValueError(f"Feature {name!r}: (records, values) expected, got {values.shape}.")
        blocks, size = _feature_blocks(name, values)
        entries += blocks
        features_size += size
    blocks = [_field_header(bytes([_LENGTH_DELIMITED_1]), features_size), *entries]
    data = np.concatenate([block for block, _ in blocks], axis=1)  # (N, C) uint8
    used = np.concatenate([mask for _, mask in blocks], axis=1)  # (N, C) bool
    flat = np.compress(used.ravel(), data.ravel()).tobytes()  # Every record, end to end.
    ends = np.cumsum(_with_header(features_size)).tolist()
    return [flat[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]

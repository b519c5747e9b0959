"""Writing: instances -> google-research/bert's tf.train.Example records -> sharded TFRecords.

The feature layout and the serialization are `bert_keras.records`' (the one spec the
reader uses too). Shards are `PREFIX-00000-of-0000N.tfrecord`, or `.tfrecord.gz` with
GZIP compression, written by Beam's WriteToTFRecord (so any Beam filesystem works).
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes

from bert_keras import records
from pipeline.instances import PairInstance
from pipeline.masking import MaskedLm

SHARD_NAME_TEMPLATE = "-SSSSS-of-NNNNN"


def instance_features(
    instance: PairInstance, masked: MaskedLm, spec: records.RecordSpec
) -> dict[str, list[int] | list[float]]:
    """GB's features of one instance, padded with zeros to the spec's lengths."""
    length = len(instance.input_ids)
    pad = spec.max_seq_length - length
    num_masked = len(masked.positions)
    if pad < 0 or num_masked > spec.max_predictions_per_seq:
        raise ValueError(
            f"Instance of {length} tokens and {num_masked} predictions does not fit {spec}."
        )
    mask_pad = spec.max_predictions_per_seq - num_masked
    # .tolist() first: protobuf's repeated fields take Python ints far faster than NumPy's.
    return {
        records.INPUT_IDS: masked.output_ids.tolist() + [0] * pad,
        records.INPUT_MASK: [1] * length + [0] * pad,
        records.SEGMENT_IDS: [0] * (instance.num_a + 2)
        + [1] * (length - instance.num_a - 2)
        + [0] * pad,
        records.MASKED_LM_POSITIONS: masked.positions.tolist() + [0] * mask_pad,
        records.MASKED_LM_IDS: masked.label_ids.tolist() + [0] * mask_pad,
        records.MASKED_LM_WEIGHTS: [1.0] * num_masked + [0.0] * mask_pad,
        records.NEXT_SENTENCE_LABELS: [int(instance.is_random_next)],
    }


def serialize_instance(instance: PairInstance, masked: MaskedLm, spec: records.RecordSpec) -> bytes:
    return records.serialize_example(instance_features(instance, masked, spec), spec)


def sequence_features(
    input_ids: np.ndarray,
    segment_ids: np.ndarray,
    spec: records.RecordSpec,
    masked: MaskedLm | None = None,
    next_sentence_label: int | None = None,
) -> dict[str, list[int] | list[float]]:
    """Features of any layout: the spec decides which are written.

    `input_ids`, `segment_ids` (L,) are the unmasked ids; `masked` (needed when the spec
    has masked-LM features) supplies the ids the model sees and the targets.
    """
    length = len(input_ids)
    pad = spec.max_seq_length - length
    if pad < 0:
        raise ValueError(f"Instance of {length} tokens does not fit {spec}.")
    seen = masked.output_ids if masked is not None and spec.has_masked_lm else input_ids
    features: dict[str, list[int] | list[float]] = {
        records.INPUT_IDS: seen.tolist() + [0] * pad,
        records.INPUT_MASK: [1] * length + [0] * pad,
        records.SEGMENT_IDS: segment_ids.tolist() + [0] * pad,
    }
    if spec.has_masked_lm:
        if masked is None:
            raise ValueError(f"{spec} needs masked-LM predictions.")
        num_masked = len(masked.positions)
        if num_masked > spec.max_predictions_per_seq:
            raise ValueError(f"{num_masked} predictions do not fit {spec}.")
        mask_pad = spec.max_predictions_per_seq - num_masked
        features[records.MASKED_LM_POSITIONS] = masked.positions.tolist() + [0] * mask_pad
        features[records.MASKED_LM_IDS] = masked.label_ids.tolist() + [0] * mask_pad
        features[records.MASKED_LM_WEIGHTS] = [1.0] * num_masked + [0.0] * mask_pad
    if spec.has_next_sentence:
        if next_sentence_label is None:
            raise ValueError(f"{spec} needs a next-sentence label.")
        features[records.NEXT_SENTENCE_LABELS] = [int(next_sentence_label)]
    return features


def output_suffix(compression: str) -> str:
    return ".tfrecord.gz" if compression == "GZIP" else ".tfrecord"


class WriteShards(beam.PTransform):
    """Serialized examples -> `num_shards` TFRecord files under `output_prefix`.

    With `num_shards=0` the runner picks the number of files and writes each bundle where
    it was made; a fixed count needs a shuffle (a GroupByKey) of every record first, which
    the in-process DirectRunner holds in memory.
    """

    def __init__(self, output_prefix: str, num_shards: int, compression: str = "NONE"):
        super().__init__()
        self._output_prefix = output_prefix
        self._num_shards = num_shards
        self._compression = compression

    def expand(self, serialized):
        return serialized | "WriteToTFRecord" >> beam.io.WriteToTFRecord(
            self._output_prefix,
            file_name_suffix=output_suffix(self._compression),
            num_shards=self._num_shards,
            shard_name_template=SHARD_NAME_TEMPLATE,
            compression_type=(
                CompressionTypes.GZIP
                if self._compression == "GZIP"
                else CompressionTypes.UNCOMPRESSED
            ),
        )

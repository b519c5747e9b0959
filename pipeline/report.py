"""A dataset report of pretraining TFRecords: what to look at before a week of accelerator time.

    python -m pipeline.report --input_file='out/pretrain-*.tfrecord' [--output_dir=out/report]
        [--vocab_file=vocab.txt]

Counts documents (from the run's `PREFIX.summary.json` when it is there), instances and
tokens; the masked fraction and how masked positions were shown ([MASK] / kept / random);
the share of each next-sentence label; the share of [UNK] among the real tokens (the
unmasked ids: masked positions get their label back); histograms of sequence length, of
masked positions and of predictions per instance. Writes `report.json` and two PNG plots
(`sequence_length.png`, `masked_positions.png`) into `--output_dir` (default: the
directory of the first record file). `create_pretraining_data` writes the same beside its
shards (`PREFIX.report.json`, `PREFIX.sequence_length.png`, `PREFIX.masked_positions.png`).

Streaming: records are read with tf.data in batches and parsed with `bert_keras.records`'
spec; only per-position counts are kept, so memory does not grow with the data.
Any record layout is read: static or dynamic masking, with or without NSP.

Dimension legend: B records per batch, T max_seq_length, P max_predictions_per_seq.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys

import numpy as np
import tensorflow as tf

from bert_keras import records

SHARD_SUFFIX = re.compile(r"-\d{5}-of-\d{5}\.tfrecord(\.gz)?$")
LENGTH_SUFFIX = re.compile(r"-len\d+$")
BATCH_SIZE = 512


def summary_path_for(record_file: str) -> str | None:
    """`PREFIX[-lenN]-00000-of-00008.tfrecord` -> the run's `PREFIX.summary.json`, if any."""
    prefix = SHARD_SUFFIX.sub("", record_file)
    for candidate in (prefix, LENGTH_SUFFIX.sub("", prefix)):
        path = candidate + ".summary.json"
        if tf.io.gfile.exists(path):
            return path
    return None


def _unk_id(vocab_file: str | None, summary: dict | None) -> int | None:
    if vocab_file:
        from bert_keras.tokenization import UNK_TOKEN, load_vocab

        return load_vocab(vocab_file).index(UNK_TOKEN)
    if summary and summary.get("unk_id") is not None:
        return int(summary["unk_id"])
    return None


def _share(count: int, total: int) -> float | None:
    return count / total if total else None


class _Accumulator:
    """Per-position counts over every batch; the report is computed from these at the end."""

    def __init__(self, spec: records.RecordSpec, unk_id: int | None, mask_id: int | None):
        self.spec = spec
        self.unk_id = unk_id
        self.mask_id = mask_id
        self.instances = 0
        self.tokens = 0
        self.unk = 0
        self.lengths = np.zeros(spec.max_seq_length + 1, np.int64)  # (T + 1,)
        self.positions = np.zeros(spec.max_seq_length, np.int64)  # (T,)
        self.per_instance = np.zeros(spec.max_predictions_per_seq + 1, np.int64)  # (P + 1,)
        self.shown = {"mask": 0, "kept": 0, "other": 0}
        self.nsp = np.zeros(2, np.int64)

    def add(self, batch: dict[str, np.ndarray]) -> None:
        ids = batch[records.INPUT_IDS].copy()  # (B, T)
        real = batch[records.INPUT_MASK] > 0  # (B, T)
        lengths = real.sum(axis=1)  # (B,)
        self.instances += len(ids)
        self.tokens += int(lengths.sum())
        self.lengths += np.bincount(lengths, minlength=len(self.lengths))
        if self.spec.has_masked_lm:
            weights = batch[records.MASKED_LM_WEIGHTS] > 0  # (B, P)
            positions = batch[records.MASKED_LM_POSITIONS]  # (B, P)
            labels = batch[records.MASKED_LM_IDS]  # (B, P)
            rows = np.broadcast_to(np.arange(len(ids))[:, None], positions.shape)
            seen = ids[rows[weights], positions[weights]]
            truth = labels[weights]
            if self.mask_id is not None:
                self.shown["mask"] += int((seen == self.mask_id).sum())
                self.shown["kept"] += int(((seen == truth) & (seen != self.mask_id)).sum())
                self.shown["other"] += int(((seen != truth) & (seen != self.mask_id)).sum())
            ids[rows[weights], positions[weights]] = truth  # The unmasked ids.
            self.positions += np.bincount(positions[weights], minlength=len(self.positions))
            self.per_instance += np.bincount(weights.sum(axis=1), minlength=len(self.per_instance))
        if self.spec.has_next_sentence:
            self.nsp += np.bincount(batch[records.NEXT_SENTENCE_LABELS][:, 0], minlength=2)[:2]
        if self.unk_id is not None:
            self.unk += int(((ids == self.unk_id) & real).sum())

    def report(self) -> dict:
        masked = int(self.positions.sum())
        shown_total = sum(self.shown.values())
        return {
            "instances": self.instances,
            "tokens": self.tokens,
            "max_seq_length": self.spec.max_seq_length,
            "has_masked_lm": self.spec.has_masked_lm,
            "has_next_sentence": self.spec.has_next_sentence,
            "mean_sequence_length": _share(self.tokens, self.instances),
            "padding_share": _share(
                self.instances * self.spec.max_seq_length - self.tokens,
                self.instances * self.spec.max_seq_length,
            ),
            "masked_tokens": masked if self.spec.has_masked_lm else None,
            "masked_fraction": _share(masked, self.tokens) if self.spec.has_masked_lm else None,
            "masked_shown_as": (
                {k: _share(v, shown_total) for k, v in self.shown.items()} if shown_total else None
            ),
            "next_sentence_label_shares": (
                {str(k): _share(int(v), self.instances) for k, v in enumerate(self.nsp)}
                if self.spec.has_next_sentence
                else None
            ),
            "unk_share": _share(self.unk, self.tokens) if self.unk_id is not None else None,
            "histograms": {
                "sequence_length": self.lengths.tolist(),
                "masked_positions": self.positions.tolist() if self.spec.has_masked_lm else None,
                "predictions_per_instance": (
                    self.per_instance.tolist() if self.spec.has_masked_lm else None
                ),
            },
        }


def build_report(record_files: list[str], vocab_file: str | None = None) -> dict:
    """Reads `record_files` (one layout) once and returns the report as a JSON-able dict."""
    if not record_files:
        raise ValueError("No record files to report on.")
    summary_path = summary_path_for(record_files[0])
    summary = None
    if summary_path:
        with tf.io.gfile.GFile(summary_path) as f:
            summary = json.load(f)
    compression = records.compression_type(record_files[0])
    dataset = tf.data.TFRecordDataset(record_files, compression_type=compression)
    first = next(iter(dataset.take(1)), None)
    if first is None:
        raise ValueError(f"{record_files[0]} and the other files hold no record.")
    spec = records.spec_from_record(bytes(first.numpy()))
    mask_id = None
    if vocab_file:
        from bert_keras.tokenization import MASK_TOKEN, load_vocab

        mask_id = load_vocab(vocab_file).index(MASK_TOKEN)
    elif summary and summary.get("mask_id") is not None:
        mask_id = int(summary["mask_id"])
    accumulator = _Accumulator(spec, _unk_id(vocab_file, summary), mask_id)
    batches = dataset.batch(BATCH_SIZE).map(lambda s: records.decode_batch(s, spec))
    for batch in batches.prefetch(2).as_numpy_iterator():
        accumulator.add(batch)
    report = accumulator.report()
    report["record_files"] = len(record_files)
    report["documents"] = summary["summary"]["documents"] if summary else None
    report["summary_file"] = summary_path
    return report


def _plot(path: str, counts: list[int], title: str, xlabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3.5))
    axes.bar(np.arange(len(counts)), counts, width=1.0)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("count")
    figure.tight_layout()
    with tf.io.gfile.GFile(path, "wb") as f:
        figure.savefig(f, format="png", dpi=80)
    plt.close(figure)


def write_report(report: dict, output_dir: str, name_prefix: str = "") -> list[str]:
    """Writes `{name_prefix}report.json` and the PNG plots; returns the paths written."""
    tf.io.gfile.makedirs(output_dir)
    paths = [os.path.join(output_dir, name_prefix + "report.json")]
    with tf.io.gfile.GFile(paths[0], "w") as f:
        json.dump(report, f, indent=2)
    histograms = report["histograms"]
    plots = [
        ("sequence_length", "Sequence length (real tokens)", "tokens"),
        ("masked_positions", "Masked positions", "position"),
    ]
    for name, title, xlabel in plots:
        if histograms[name] is not None:
            paths.append(os.path.join(output_dir, f"{name_prefix}{name}.png"))
            _plot(paths[-1], histograms[name], f"{title}, {report['instances']} instances", xlabel)
    return paths


def format_report(report: dict) -> str:
    def fmt(value) -> str:
        return (
            "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
        )

    keys = (
        "documents",
        "instances",
        "tokens",
        "mean_sequence_length",
        "padding_share",
        "masked_fraction",
        "masked_shown_as",
        "next_sentence_label_shares",
        "unk_share",
    )
    lines = []
    for key in keys:
        value = report[key]
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {fmt(v)}" for k, v in value.items())
        lines.append(f"{key}: {fmt(value)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input_file", required=True, help="Comma-separated record globs.")
    parser.add_argument("--output_dir", help="Default: the first record file's directory.")
    parser.add_argument("--vocab_file", help="For the [UNK]/[MASK] ids (else the summary's).")
    args = parser.parse_args(argv)
    try:
        files = records.list_record_files(args.input_file)
        report = build_report(files, args.vocab_file)
    except (ValueError, tf.errors.OpError) as e:
        sys.exit(f"report: error: {e}")
    output_dir = args.output_dir or os.path.dirname(files[0])
    for path in write_report(report, output_dir):
        logging.info("Wrote %s", path)
    print(format_report(report))


def cli() -> None:
    """Console script `bert-keras-report`."""
    logging.getLogger().setLevel(logging.INFO)
    main(sys.argv[1:])


if __name__ == "__main__":
    cli()

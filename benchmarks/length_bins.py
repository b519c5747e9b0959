r"""Training throughput on length-binned records vs the same records padded to full length.

    python benchmarks/length_bins.py [--work_dir=/tmp/length_bins_bench] [--preset=mini] \
      [--length_bins=32,64,96] [--max_seq_length=128] [--measure_steps=20]

One corpus (the default one, `pipeline.sample_corpus`, and a vocab built from it by
`pipeline.build_vocab`, both reused from `--work_dir` when there), two runs of
`pipeline.create_pretraining_data` with the same seed: without bins, and with
`--length_bins` (the same instances; `tests/pipeline/test_length_bins.py`). Then
`bert_keras.training.pretraining.run` on each: one loop of `--measure_steps` steps to
trace and warm up, one timed (the trainer's own rate of its last loop).

Printed per run: records, the share of the record positions that are real tokens, the
mean record length (bins weighted by their records), sequences/s of the timed loop (wall)
and sequences per CPU-second of this process in that loop (what a loaded, shared machine
distorts least). Nothing is asserted; figures vary with the machine's load, and a loop
of `--measure_steps` batches samples the bins at random (its mean length varies).
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import subprocess
import sys
import time

import tensorflow as tf

from bert_keras import records
from bert_keras.training import pretraining, trainer
from pipeline import create_pretraining_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def prepare(work_dir: str) -> tuple[str, str]:
    """The default corpus and an 8,000-piece vocab of it, made once per work_dir."""
    os.makedirs(work_dir, exist_ok=True)
    corpus = os.path.join(work_dir, "corpus.txt")
    vocab = os.path.join(work_dir, "vocab.txt")
    if not os.path.exists(corpus):
        subprocess.run(
            [sys.executable, "-m", "pipeline.sample_corpus", f"--output_file={corpus}"],
            check=True,
            cwd=ROOT,
        )
    if not os.path.exists(vocab):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline.build_vocab",
                f"--input_file={corpus}",
                f"--output_file={vocab}",
                "--vocab_size=8000",
                "--runner=DirectRunner",
            ],
            check=True,
            cwd=ROOT,
        )
    return corpus, vocab


def cpu_seconds() -> float:
    """CPU seconds of this process so far (all its threads: the step and tf.data)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# (step, wall, CPU seconds) at the end of every training loop: the trainer's Progress is
# called once per loop, right after it.
LOOP_ENDS: list[tuple[int, float, float]] = []
_update = trainer.Progress.update


def _timed_update(self, step, metrics):
    LOOP_ENDS.append((step, time.perf_counter(), cpu_seconds()))
    return _update(self, step, metrics)


trainer.Progress.update = _timed_update  # type: ignore[method-assign]


def record_stats(files: list[str]) -> tuple[int, int, int]:
    """(records, real tokens, record positions) of `files`."""
    num = tokens = positions = 0
    for path in files:
        for serialized in tf.data.TFRecordDataset(path).batch(1024):
            batch = tf.io.parse_example(
                serialized,
                {
                    records.INPUT_MASK: tf.io.FixedLenSequenceFeature(
                        [], tf.int64, allow_missing=True
                    )
                },
            )[records.INPUT_MASK].numpy()
            num += batch.shape[0]
            tokens += int(batch.sum())
            positions += batch.size
    return num, tokens, positions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work_dir", default="/tmp/length_bins_bench")
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--length_bins", default="32,64,96")
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--max_predictions_per_seq", type=int, default=20)
    parser.add_argument("--train_batch_size", type=int, default=32)
    parser.add_argument("--measure_steps", type=int, default=20)
    parser.add_argument("--dupe_factor", type=int, default=2)
    parser.add_argument(
        "--jit_compile",
        action="store_true",
        help="XLA: one compilation per bin length; the encoder then runs its padded path.",
    )
    args = parser.parse_args(argv)

    corpus, vocab = prepare(args.work_dir)
    rows = []
    for name, extra in (("full length", []), (f"bins {args.length_bins}", [args.length_bins])):
        prefix = os.path.join(args.work_dir, "records_binned" if extra else "records", "train")
        if not glob.glob(prefix + "*.tfrecord"):
            create_pretraining_data.run(
                [
                    f"--input_file={corpus}",
                    f"--output_file={prefix}",
                    f"--vocab_file={vocab}",
                    f"--max_seq_length={args.max_seq_length}",
                    f"--max_predictions_per_seq={args.max_predictions_per_seq}",
                    f"--dupe_factor={args.dupe_factor}",
                    "--num_shards=2",
                    "--noreport",
                    "--runner=DirectRunner",
                    *(f"--length_bins={b}" for b in extra),
                ]
            )
        files = sorted(glob.glob(prefix + "*.tfrecord"))
        num, tokens, positions = record_stats(files)
        steps = args.measure_steps
        output_dir = os.path.join(
            args.work_dir, f"run_{'binned' if extra else 'full'}_{time.time():.0f}"
        )
        del LOOP_ENDS[:]
        pretraining.run(
            pretraining.PretrainOptions(
                input_file=",".join(files),
                output_dir=output_dir,
                bert_config=pretraining.load_bert_config(None, args.preset, vocab),
                max_seq_length=args.max_seq_length,
                max_predictions_per_seq=args.max_predictions_per_seq,
                train_batch_size=args.train_batch_size,
                learning_rate=1e-4,
                num_train_steps=2 * steps,  # Loop 1 traces and warms up, loop 2 is timed.
                num_warmup_steps=1,
                save_checkpoints_steps=2 * steps,
                iterations_per_loop=steps,
                shuffle_buffer_size=1000,
                jit_compile=args.jit_compile,
            )
        )
        (step0, wall0, cpu0), (step1, wall1, cpu1) = LOOP_ENDS[-2:]
        sequences = (step1 - step0) * args.train_batch_size
        rows.append(
            (
                name,
                len(files),
                num,
                tokens / positions,
                positions / num,
                sequences / (wall1 - wall0),
                sequences / (cpu1 - cpu0),
            )
        )
    print(
        f"\n{args.preset}, batch {args.train_batch_size}, max_seq_length {args.max_seq_length}, "
        f"{args.max_predictions_per_seq} predictions, float32, one device, "
        f"{'XLA' if args.jit_compile else 'no XLA'}, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'records':<16} {'files':>5} {'records':>8} {'real/pos':>8} {'mean len':>8} "
        f"{'seq/s':>8} {'seq/CPU-s':>9}"
    )
    for name, num_files, num, share, mean_length, rate, cpu_rate in rows:
        print(
            f"{name:<16} {num_files:>5} {num:>8} {share:>8.1%} {mean_length:>8.1f} "
            f"{rate:>8.1f} {cpu_rate:>9.2f}"
        )
    print(
        f"bins vs full length: {rows[1][5] / rows[0][5]:.2f}x seq/s (wall), "
        f"{rows[1][6] / rows[0][6]:.2f}x seq per CPU-second"
    )
    print(f"same number of records in both: {rows[0][2] == rows[1][2]}")


if __name__ == "__main__":
    main()

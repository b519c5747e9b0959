"""The main job end to end, offline, on the default corpus (the README's `make demo`).

    python -m bert_keras.demo --output_dir=out/demo

corpus (stdlib docstrings) -> WordPiece vocab (Beam) -> pretraining TFRecords (Beam, 2
worker processes) -> pretrain a small encoder -> fine-tune "which part of the standard
library is this passage from?" from the pretrained encoder AND from random init -> export a
raw-text SavedModel -> classify sentences in a fresh process that imports only tensorflow
and tensorflow_text (what TF Serving does).

Every step runs the project's real command line (`python -m ...`) in a subprocess, exactly
as a user would, so the demo also proves the entrypoints. Point it at your own corpus with
`--corpus_file` (GB's format: a sentence per line, blank line between documents) and your
own task with `--task_dir` (train.tsv/dev.tsv/test.tsv with `sentence`, `label` columns).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from absl import app, flags

_OUTPUT_DIR = flags.DEFINE_string("output_dir", "out/demo", "Where every artefact goes.")
_CORPUS_FILE = flags.DEFINE_string(
    "corpus_file", None, "Your corpus (GB's format); default: build it from the stdlib."
)
_TASK_DIR = flags.DEFINE_string(
    "task_dir", None, "Your classification task (train/dev/test.tsv); default: stdlib areas."
)
_CORPUS_MAX_BYTES = flags.DEFINE_integer("corpus_max_bytes", 4_000_000, "Default corpus size.")
_VOCAB_SIZE = flags.DEFINE_integer("vocab_size", 8000, "WordPiece vocabulary size.")
_DUPE_FACTOR = flags.DEFINE_integer("dupe_factor", 5, "Passes of masking over the corpus.")
_MAX_SEQ_LENGTH = flags.DEFINE_integer("max_seq_length", 128, "Pretraining sequence length.")
_MAX_PREDICTIONS = flags.DEFINE_integer("max_predictions_per_seq", 20, "Masks per sequence.")
_PRESET = flags.DEFINE_string("preset", "tiny", "Model size: tiny|mini|small|medium|base|large.")
_PRETRAIN_STEPS = flags.DEFINE_integer("pretrain_steps", 3000, "Pretraining optimiser steps.")
_PRETRAIN_BATCH_SIZE = flags.DEFINE_integer("pretrain_batch_size", 32, "Pretraining batch.")
_PRETRAIN_LEARNING_RATE = flags.DEFINE_float("pretrain_learning_rate", 1e-3, "Peak LR.")
_FINETUNE_EPOCHS = flags.DEFINE_float("finetune_epochs", 4.0, "Fine-tuning epochs.")
_FINETUNE_LEARNING_RATE = flags.DEFINE_float("finetune_learning_rate", 1e-3, "Peak LR.")
_FINETUNE_SEQ_LENGTH = flags.DEFINE_integer("finetune_seq_length", 128, "Fine-tuning length.")
_NUM_WORKERS = flags.DEFINE_integer("num_workers", 2, "Beam worker processes.")
_SKIP_RANDOM_BASELINE = flags.DEFINE_bool(
    "skip_random_baseline", False, "Do not fine-tune the randomly initialised comparison."
)

DEMO_SENTENCES = (
    "Return a new event loop and schedule the coroutine on it.",
    "Parse the message headers and return the MIME content type.",
    "Create a button widget and pack it into the parent window.",
    "Open the configuration dialog and apply the selected font.",
)

# The fresh process of the last step: only tensorflow and tensorflow_text, no project code.
PREDICT_SCRIPT = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModel uses)
model = tf.saved_model.load(sys.argv[1])
sentences = json.loads(sys.argv[2])
outputs = model.signatures["serving_default"](text=tf.constant(sentences))
assert not [m for m in sys.modules if m.split(".")[0] in ("bert_keras", "pipeline")]
result = {name: value.numpy().tolist() for name, value in outputs.items()}
for key, value in result.items():
    result[key] = [v.decode() if isinstance(v, bytes) else v for v in value]
print(json.dumps(result))
"""


# Library chatter (Beam's worker INFO lines, TF's C++ logs) goes to the step's log only.
_QUIET_PREFIXES = ("INFO:", "WARNING:", "I0000", "E0000", "W0000", "I1", "W1")


def _run_step(title: str, argv: list[str], log_dir: str) -> float:
    """Runs `python -m ...` with its output shown live (progress bars) and kept in a log."""
    print(f"\n=== {title}\n    $ {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    log_path = os.path.join(log_dir, title.split()[0].replace("/", "_") + ".log")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            log.write(line)
            if not line.startswith(_QUIET_PREFIXES):
                sys.stdout.write("    " + line)
                sys.stdout.flush()
        code = process.wait()
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"demo: step '{title}' failed with exit code {code}; log: {log_path}")
    print(f"    ({seconds:.0f} s)", flush=True)
    return seconds


def _read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


CURVE_TAGS = ("loss", "mlm_accuracy", "nsp_accuracy", "learning_rate")


def plot_training_curve(event_dir: str, output_png: str) -> list[str]:
    """Plots every scalar TensorBoard logged under `event_dir` (loss, accuracies, LR)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tensorflow as tf

    series: dict[str, list[tuple[int, float]]] = {}
    for name in sorted(tf.io.gfile.listdir(event_dir)):
        if "tfevents" not in name:
            continue
        for record in tf.data.TFRecordDataset(os.path.join(event_dir, name)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                number = (
                    float(tf.make_ndarray(value.tensor))
                    if value.HasField("tensor")
                    else (value.simple_value)
                )
                series.setdefault(value.tag, []).append((event.step, number))
    if not series:
        raise ValueError(f"No TensorBoard scalars under {event_dir}.")
    tags = [tag for tag in CURVE_TAGS if tag in series] or sorted(series)
    figure, axes = plt.subplots(len(tags), 1, figsize=(7, 2.2 * len(tags)), sharex=True)
    axes = axes if len(tags) > 1 else [axes]
    for axis, tag in zip(axes, tags, strict=True):
        steps, values = zip(*sorted(series[tag]), strict=True)
        axis.plot(steps, values)
        axis.set_ylabel(tag, fontsize=8)
        axis.grid(alpha=0.3)
    axes[-1].set_xlabel("step")
    figure.suptitle("pretraining")
    figure.tight_layout()
    figure.savefig(output_png, dpi=90)
    plt.close(figure)
    return tags


def run_demo() -> dict:
    out = os.path.abspath(_OUTPUT_DIR.value)
    logs = os.path.join(out, "logs")
    os.makedirs(logs, exist_ok=True)
    corpus = _CORPUS_FILE.value or os.path.join(out, "corpus.txt")
    vocab = os.path.join(out, "vocab.txt")
    records_prefix = os.path.join(out, "records", "pretrain")
    pretrain_dir = os.path.join(out, "pretrain")
    task_dir = _TASK_DIR.value or os.path.join(out, "task")
    finetune_dir = os.path.join(out, "finetune")
    baseline_dir = os.path.join(out, "finetune_random_init")
    export_dir = os.path.join(out, "export")
    seconds: dict[str, float] = {}
    beam_workers = [
        "--runner=DirectRunner",
        "--direct_running_mode=multi_processing",
        f"--direct_num_workers={_NUM_WORKERS.value}",
    ]

    if not _CORPUS_FILE.value:
        seconds["corpus"] = _run_step(
            "1/8 corpus from the standard library's docstrings",
            [
                "-m",
                "pipeline.sample_corpus",
                f"--output_file={corpus}",
                f"--max_bytes={_CORPUS_MAX_BYTES.value}",
            ],
            logs,
        )
    seconds["vocab"] = _run_step(
        "2/8 WordPiece vocabulary (Beam word count + tensorflow-text learner)",
        [
            "-m",
            "pipeline.build_vocab",
            f"--input_file={corpus}",
            f"--output_file={vocab}",
            f"--vocab_size={_VOCAB_SIZE.value}",
            "--do_lower_case",
            "--runner=DirectRunner",
        ],
        logs,
    )
    seconds["records"] = _run_step(
        f"3/8 pretraining TFRecords (Beam, {_NUM_WORKERS.value} worker processes)",
        [
            "-m",
            "pipeline.create_pretraining_data",
            f"--input_file={corpus}",
            f"--output_file={records_prefix}",
            f"--vocab_file={vocab}",
            f"--max_seq_length={_MAX_SEQ_LENGTH.value}",
            f"--max_predictions_per_seq={_MAX_PREDICTIONS.value}",
            f"--dupe_factor={_DUPE_FACTOR.value}",
            "--num_shards=4",
            *beam_workers,
        ],
        logs,
    )
    warmup = max(1, _PRETRAIN_STEPS.value // 10)
    seconds["pretrain"] = _run_step(
        f"4/8 pretrain a '{_PRESET.value}' encoder (MLM + NSP) for {_PRETRAIN_STEPS.value} steps",
        [
            "-m",
            "bert_keras.pretrain",
            f"--input_file={records_prefix}-*",
            f"--output_dir={pretrain_dir}",
            f"--preset={_PRESET.value}",
            f"--vocab_file={vocab}",
            f"--max_seq_length={_MAX_SEQ_LENGTH.value}",
            f"--max_predictions_per_seq={_MAX_PREDICTIONS.value}",
            f"--train_batch_size={_PRETRAIN_BATCH_SIZE.value}",
            f"--learning_rate={_PRETRAIN_LEARNING_RATE.value}",
            f"--num_train_steps={_PRETRAIN_STEPS.value}",
            f"--num_warmup_steps={warmup}",
            f"--save_checkpoints_steps={max(1, _PRETRAIN_STEPS.value // 3)}",
        ],
        logs,
    )
    if not _TASK_DIR.value:
        seconds["task"] = _run_step(
            "5/8 fine-tuning task: which standard-library package is a passage from?",
            ["-m", "pipeline.stdlib_task", f"--output_dir={task_dir}"],
            logs,
        )
    finetune_common = [
        "-m",
        "bert_keras.finetune",
        "--task=classification",
        f"--train_file={os.path.join(task_dir, 'train.tsv')}",
        f"--dev_file={os.path.join(task_dir, 'dev.tsv')}",
        f"--test_file={os.path.join(task_dir, 'test.tsv')}",
        "--text_a_column=sentence",
        "--label_column=label",
        "--id_column=index",
        f"--vocab_file={vocab}",
        f"--max_seq_length={_FINETUNE_SEQ_LENGTH.value}",
        f"--num_train_epochs={_FINETUNE_EPOCHS.value}",
        f"--learning_rate={_FINETUNE_LEARNING_RATE.value}",
    ]
    seconds["finetune"] = _run_step(
        "6/8 fine-tune from the pretrained encoder",
        [*finetune_common, f"--init_checkpoint={pretrain_dir}", f"--output_dir={finetune_dir}"],
        logs,
    )
    if not _SKIP_RANDOM_BASELINE.value:
        seconds["baseline"] = _run_step(
            "6b/8 the same fine-tuning from random initialisation (the comparison)",
            [
                *finetune_common,
                f"--bert_config_file={os.path.join(pretrain_dir, 'bert_config.json')}",
                f"--output_dir={baseline_dir}",
            ],
            logs,
        )
    seconds["export"] = _run_step(
        "7/8 export a raw-text classifier SavedModel (TF Serving layout)",
        [
            "-m",
            "bert_keras.export",
            "--kind=classifier",
            f"--checkpoint={os.path.join(finetune_dir, 'best')}",
            f"--export_dir={export_dir}",
            "--model_name=stdlib_classifier",
            "--version=1",
        ],
        logs,
    )
    saved_model = os.path.join(export_dir, "stdlib_classifier", "1")
    print("\n=== 8/8 classify in a fresh process (imports only tensorflow + tensorflow_text)")
    start = time.perf_counter()
    answer = subprocess.run(
        [sys.executable, "-I", "-c", PREDICT_SCRIPT, saved_model, json.dumps(DEMO_SENTENCES)],
        capture_output=True,
        text=True,
        cwd="/",
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    if answer.returncode != 0:
        raise SystemExit(f"demo: prediction in a fresh process failed:\n{answer.stderr[-3000:]}")
    predictions = json.loads(answer.stdout.strip().splitlines()[-1])
    seconds["predict"] = time.perf_counter() - start
    label_key = next(k for k in predictions if "label" in k and isinstance(predictions[k][0], str))
    for sentence, label in zip(DEMO_SENTENCES, predictions[label_key], strict=True):
        print(f"    {label:>12}  <-  {sentence}")

    curve_png = os.path.join(pretrain_dir, "training_curve.png")
    plot_training_curve(os.path.join(pretrain_dir, "train"), curve_png)
    summary = {
        "data": _read_json(records_prefix + ".summary.json")["summary"],
        "pretraining": _read_json(os.path.join(pretrain_dir, "metrics.json")),
        "dev_pretrained": _read_json(os.path.join(finetune_dir, "eval_results.json")),
        "dev_random_init": (
            None
            if _SKIP_RANDOM_BASELINE.value
            else _read_json(os.path.join(baseline_dir, "eval_results.json"))
        ),
        "predictions": dict(zip(DEMO_SENTENCES, predictions[label_key], strict=True)),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "artefacts": {
            "corpus": corpus,
            "vocab": vocab,
            "records": records_prefix + "-*",
            "dataset_report": records_prefix + ".report.json (plots: *.png beside it)",
            "pretrain_dir": pretrain_dir,
            "training_curve": curve_png,
            "finetune_best": os.path.join(finetune_dir, "best"),
            "saved_model": saved_model,
            "tensorboard": f"tensorboard --logdir={pretrain_dir}",
        },
    }
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print_summary(summary, os.path.join(out, "summary.json"))
    return summary


def _main_metric(results: dict | None) -> str:
    if not results:
        return "(skipped)"
    dev = next(iter(results["dev"].values()))
    return ", ".join(f"{name} {value:.3f}" for name, value in dev.items())


def print_summary(summary: dict, path: str) -> None:
    data, pretraining = summary["data"], summary["pretraining"]
    print("\n=== summary")
    print(f"data:        {data}")
    print(
        "pretraining: "
        + ", ".join(
            f"{key} {pretraining[key]:.3f}"
            for key in ("loss", "mlm_accuracy", "nsp_accuracy")
            if key in pretraining
        )
    )
    print(f"dev, from the pretrained encoder: {_main_metric(summary['dev_pretrained'])}")
    print(f"dev, from random initialisation:  {_main_metric(summary['dev_random_init'])}")
    print("seconds:     " + ", ".join(f"{k} {v:.0f}" for k, v in summary["seconds"].items()))
    for name, where in summary["artefacts"].items():
        print(f"{name:>15}: {where}")
    print(f"(all of it in {path})")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    run_demo()


def cli() -> None:
    app.run(main)


if __name__ == "__main__":
    cli()

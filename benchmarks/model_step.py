"""Forward+backward speed of our BertPretrainer against keras-hub's BertMaskedLM.

One training step (`train_on_batch`: forward, loss, backward, Adam update; or with
`--step=gradients` forward, loss and backward only, the model's own work) at the same
config, with and without `jit_compile`, on three kinds of batches (`--batches`):

- `full`: every sequence T tokens long;
- `records`: batches of real pretraining records (`--record_files`, e.g. the output of
  `python -m pipeline.demo --output_dir=out/demo`, written with google-research/bert's
  defaults, short_seq_prob 0.1): their padding, segments and masked positions as they are.
  Skipped, with a message, when no file matches;
- `short`: fine-tuning-like lengths, uniform over [`--short_min`, `--short_max`] tokens
  (default 20..60, mean 40 of 128); masked positions as in `make_batch`.

Model FLOP/s are set against the fp32 matmul FLOP/s measured here first.

    python benchmarks/model_step.py --record_files='out/demo/pretrain-*.tfrecord'
    python benchmarks/model_step.py --configs=mini --batch_sizes=32 --steps=5 --batches=full

FLOPs per step are counted as 3x the forward matmul FLOPs (backward ~2x forward) at the
real (unpadded) lengths: "useful" FLOP/s, the same numerator for both models.

The machine may be shared, so each step is timed twice: wall clock, and the CPU time of
this process (all threads). `cpu seq/s` = batch * cores / CPU seconds estimates the rate on
an idle machine, and `%matmul` compares CPU-time FLOP/s with the matmul measured the same
way. `--repeats` runs every measurement that many times (in turn, ours and keras-hub's
interleaved) and reports the median.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from bert_keras.config import BertConfig  # noqa: E402
from bert_keras.models import BertEncoder, BertPretrainer  # noqa: E402

_CONFIGS = flags.DEFINE_list("configs", ["mini", "base"], "Presets to run.")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["32", "8"], "Batch size per config.")
_MAX_SEQ_LENGTH = flags.DEFINE_integer("max_seq_length", 128, "Sequence length T.")
_MAX_PREDICTIONS = flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked positions P.")
_STEPS = flags.DEFINE_list("steps", ["3", "1"], "Timed steps per config (after 1 warm-up).")
_JIT = flags.DEFINE_list("jit_compile", ["false", "true"], "jit_compile settings to run.")
_IMPLS = flags.DEFINE_list("impls", ["keras_hub", "ours"], "Models to run.")
_BATCHES = flags.DEFINE_list("batches", ["full", "records", "short"], "Batch kinds to run.")
_RECORD_FILES = flags.DEFINE_string(
    "record_files", "out/demo/pretrain-*.tfrecord", "Pretraining records for `records` batches."
)
_SHORT_MIN = flags.DEFINE_integer("short_min", 20, "Shortest length of `short` batches.")
_SHORT_MAX = flags.DEFINE_integer("short_max", 60, "Longest length of `short` batches.")
_REPEATS = flags.DEFINE_integer("repeats", 1, "Times each measurement is repeated (median).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the synthetic batches.")
_STEP = flags.DEFINE_enum(
    "step",
    "train",
    ["train", "gradients"],
    "train: train_on_batch (forward, loss, backward, Adam update); gradients: forward, loss "
    "and backward only (the model's own FLOPs, no optimizer update), in one tf.function.",
)


def matmul_flops_per_second(n: int = 2048, repeats: int = 10) -> tuple[float, float]:
    """fp32 FLOP/s of a square matmul chain (wall, and per CPU-second x cores)."""
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n)) / n

    @tf.function
    def chain(a):
        for _ in range(repeats):
            a = tf.matmul(a, b)
        return tf.reduce_sum(a)

    chain(a).numpy()
    wall, cpu = [], []
    for _ in range(3):
        start, start_cpu = time.perf_counter(), time.process_time()
        chain(a).numpy()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    flops = 2.0 * n**3 * repeats
    return flops / min(wall), flops / min(cpu) * (os.cpu_count() or 1)


def record_batches(pattern: str, batch: int, count: int, seed: int, seq: int):
    """`count` batches of real records, as (inputs, labels) of NumPy arrays, or None.

    Records are shuffled with `seed`; their length must be `seq`.
    """
    from bert_keras.records import (
        list_record_files,
        make_dataset,
        spec_from_record,
        to_model_inputs,
    )

    try:
        files = list_record_files(pattern)
    except (ValueError, FileNotFoundError, tf.errors.OpError):
        files = []
    if not files:
        return None
    first = next(iter(tf.data.TFRecordDataset(files[0]).take(1))).numpy()
    spec = spec_from_record(first)
    if spec.max_seq_length != seq:
        raise ValueError(f"{pattern}: records of length {spec.max_seq_length}, not {seq}.")
    dataset = make_dataset(files, spec, batch, shuffle=True, repeat=True, seed=seed)
    batches = []
    for decoded in dataset.take(count):
        inputs, labels = to_model_inputs(decoded)
        batches.append(
            (
                {k: np.asarray(v, np.int32) for k, v in inputs.items()},
                {k: np.asarray(v) for k, v in labels.items()},
            )
        )
    return batches


def make_batch(rng, batch, seq, predictions, vocab, lengths):
    mask = (np.arange(seq)[None] < lengths[:, None]).astype(np.int32)
    inputs = {
        "input_word_ids": (rng.integers(5, vocab, (batch, seq)) * mask).astype(np.int32),
        "input_mask": mask,
        "input_type_ids": ((np.arange(seq)[None] >= lengths[:, None] // 2) * mask).astype(np.int32),
    }
    positions = np.zeros((batch, predictions), np.int32)
    weights = np.zeros((batch, predictions), np.float32)
    for row, length in enumerate(lengths):
        count = min(predictions, max(1, int(round(length * 0.15))))
        positions[row, :count] = np.sort(rng.choice(np.arange(1, length), count, replace=False))
        weights[row, :count] = 1.0
    inputs["masked_lm_positions"] = positions
    labels = {
        "masked_lm_ids": rng.integers(5, vocab, (batch, predictions)).astype(np.int32),
        "masked_lm_weights": weights,
        "next_sentence_labels": rng.integers(0, 2, (batch, 1)).astype(np.int32),
    }
    return inputs, labels


def useful_flops(config: BertConfig, lengths, predictions: float) -> float:
    """3x forward matmul FLOPs at the real lengths (+ the MLM head at real predictions)."""
    d, f, v = config.hidden_size, config.intermediate_size, config.vocab_size
    forward = 0.0
    for length in lengths:
        per_layer = 2 * length * (4 * d * d + 2 * d * f) + 4 * length * length * d
        forward += config.num_hidden_layers * per_layer + 2 * d * d + 4 * d
    forward += predictions * (2 * d * d + 2 * d * v)
    return 3.0 * forward


def gradient_step(model, jit):
    """forward + loss + backward of a compiled model, no update: (x, y, sample_weight) -> grads."""

    @tf.function(jit_compile=jit, reduce_retracing=True)
    def gradients(x, y, sample_weight):
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
            )
        return tape.gradient(loss, model.trainable_variables)

    return gradients


def build_ours(config, jit):
    model = BertPretrainer(BertEncoder(**config.to_dict()))
    model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=jit)
    if _STEP.value == "gradients":
        gradients = gradient_step(model, jit)
        return lambda inputs, labels: gradients(inputs, labels, None)

    def step(inputs, labels):
        return model.train_on_batch(inputs, labels)

    return step


def build_keras_hub(config, jit):
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=config.vocab_size,
        num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads,
        hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size,
        dropout=config.hidden_dropout_prob,
        max_sequence_length=config.max_position_embeddings,
    )
    model = keras_hub.models.BertMaskedLM(backbone, preprocessor=None)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy()],
        jit_compile=jit,
    )

    gradients = gradient_step(model, jit) if _STEP.value == "gradients" else None

    def step(inputs, labels):
        x = {
            "token_ids": inputs["input_word_ids"],
            "segment_ids": inputs["input_type_ids"],
            "padding_mask": inputs["input_mask"],
            "mask_positions": inputs["masked_lm_positions"],
        }
        if gradients is not None:
            return gradients(x, labels["masked_lm_ids"], labels["masked_lm_weights"])
        return model.train_on_batch(
            x, labels["masked_lm_ids"], sample_weight=labels["masked_lm_weights"]
        )

    return step


def time_steps(step, batches) -> tuple[float, float]:
    """(wall, CPU) seconds per step, medians over the timed batches (the first warms up)."""
    step(*batches[0])
    wall, cpu = [], []
    for inputs, labels in batches[1:]:
        start, start_cpu = time.perf_counter(), time.process_time()
        step(inputs, labels)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return float(np.median(wall)), float(np.median(cpu))


def main(argv):
    del argv
    keras.utils.set_random_seed(_SEED.value)
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    peak_wall, peak = matmul_flops_per_second()
    print(
        f"fp32 matmul (2048^3 chain): {peak_wall / 1e9:.1f} GFLOP/s wall, "
        f"{peak / 1e9:.1f} GFLOP/s from CPU time x {cores} cores; load average {load:.2f}"
    )
    header = (
        f"{'config':6} {'batch':>5} {'kind':7} {'model':9} {'jit':5} {'wall s':>6} "
        f"{'cpu s':>6} {'seq/s':>6} {'cpu seq/s':>9} {'GFLOP/s':>7} {'%matmul':>7} "
        f"{'vs kh':>6}"
    )
    print(header)
    print("-" * len(header))
    seq, preds = _MAX_SEQ_LENGTH.value, _MAX_PREDICTIONS.value
    for name, batch_text, steps_text in zip(
        _CONFIGS.value, _BATCH_SIZES.value, _STEPS.value, strict=True
    ):
        batch_size, steps = int(batch_text), int(steps_text)
        config = BertConfig.from_preset(name, max_position_embeddings=max(512, seq))
        rng = np.random.default_rng(_SEED.value)
        kinds = {}
        for kind in _BATCHES.value:
            if kind == "records":
                batches = record_batches(
                    _RECORD_FILES.value, batch_size, steps + 1, _SEED.value, seq
                )
                if batches is None:
                    print(
                        f"{name} records: skipped, no file matches --record_files="
                        f"{_RECORD_FILES.value} (run `python -m pipeline.demo "
                        "--output_dir=out/demo` or point the flag at records)"
                    )
                    continue
                kinds[kind] = batches
                continue
            if kind not in ("full", "short"):
                raise ValueError(f"--batches: unknown kind {kind!r} (full, records, short).")
            batches = []
            for _ in range(steps + 1):
                if kind == "full":
                    lengths = np.full(batch_size, seq)
                else:
                    lengths = rng.integers(_SHORT_MIN.value, _SHORT_MAX.value + 1, batch_size)
                batches.append(make_batch(rng, batch_size, seq, preds, config.vocab_size, lengths))
            kinds[kind] = batches
        for kind, batches in kinds.items():
            real = np.mean([b[0]["input_mask"].mean() for b in batches])
            print(f"{name} {kind}: {100 * real:.0f}% real tokens")
            flops = np.mean(
                [
                    useful_flops(config, b[0]["input_mask"].sum(1), b[1]["masked_lm_weights"].sum())
                    for b in batches[1:]
                ]
            )
            for jit in (j.lower() == "true" for j in _JIT.value):
                times: dict[str, list[tuple[float, float]]] = {impl: [] for impl in _IMPLS.value}
                for _ in range(_REPEATS.value):
                    for impl in _IMPLS.value:
                        builder = build_ours if impl == "ours" else build_keras_hub
                        times[impl].append(time_steps(builder(config, jit), batches))
                        keras.backend.clear_session()
                results = {}
                for impl in _IMPLS.value:
                    wall = float(np.median([t[0] for t in times[impl]]))
                    cpu = float(np.median([t[1] for t in times[impl]]))
                    idle = cpu / cores  # Seconds per step if this process had every core.
                    results[impl] = idle
                    ratio = (
                        f"{results['keras_hub'] / idle:5.2f}x"
                        if impl == "ours" and "keras_hub" in results
                        else ""
                    )
                    print(
                        f"{name:6} {batch_size:5d} {kind:7} {impl:9} {str(jit):5} "
                        f"{wall:6.2f} {cpu:6.2f} {batch_size / wall:6.1f} "
                        f"{batch_size / idle:9.1f} {flops / idle / 1e9:7.1f} "
                        f"{100 * flops / idle / peak:6.0f}% {ratio:>6}",
                        flush=True,
                    )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    app.run(main)

"""The distributed pretraining loop: one code path for every `tf.distribute` strategy.

Keras 3's `model.fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585),
so the loop is ours: `strategy.run` of a replica step (gradient tape, one all-reduce of
the gradients, global-norm clipping, optimiser) inside a `tf.function` that runs
`steps_per_loop` steps per call.

Loss normalisation: every replica computes SUMS (`pretraining_loss_terms`) and divides by
the GLOBAL number of masked positions / NSP labels of the step (all-reduced from the
labels before the forward pass), so the summed gradient is the gradient of the global
mean loss whatever the number of replicas or micro-batches (gradient accumulation).

Resume: the checkpoint holds the pretrainer (and its encoder), the optimiser (moments,
iterations, loss scale), the step, and the dropout seed-generator states; the input is
a deterministic function of the step (`inputs.py`). The same command continues where
the last checkpoint left off, and with op determinism it ends with the same weights as
an uninterrupted run.

Dimensions: B per-replica batch, M micro-batch (B / grad_accum_steps), T sequence,
P masked positions.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from bert_keras.models import LOSS_TERM_NAMES, pretraining_loss_terms
from bert_keras.training import distribution, optimization

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
CONFIG_FILE = "bert_config.json"


@dataclasses.dataclass
class TrainConfig:
    output_dir: str
    train_batch_size: int  # Global, per optimiser step.
    num_train_steps: int
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    steps_per_loop: int = 100
    grad_accum_steps: int = 1
    clip_norm: float = 1.0  # 0 = no clipping.
    jit_compile: bool = False
    loss_scaling: bool = False  # fp16.


def check_batch_size(config: TrainConfig, num_replicas: int) -> int:
    """The per-replica batch; a ValueError naming the flags if it does not divide."""
    per_step = num_replicas * config.grad_accum_steps
    if config.train_batch_size % per_step:
        raise ValueError(
            f"--train_batch_size={config.train_batch_size} is not divisible by "
            f"{num_replicas} replicas x --grad_accum_steps={config.grad_accum_steps}."
        )
    return config.train_batch_size // num_replicas


def seed_generator_states(model: keras.Model) -> list:
    """The dropout RNG state variables, which `tf.train.Checkpoint` does not reach
    through the Keras model but an exact resume needs."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


class Progress:
    """One line per loop: step, loss, accuracies, steps/s, examples/s, ETA."""

    def __init__(self, total_steps: int, start_step: int, batch_size: int, enabled: bool):
        self.total, self.start, self.batch_size, self.enabled = (
            total_steps,
            start_step,
            batch_size,
            enabled,
        )
        self.t0 = self.t_last = time.monotonic()
        self.last_step = start_step

    def update(self, step: int, metrics: dict) -> dict:
        now = time.monotonic()
        rate = (step - self.last_step) / max(now - self.t_last, 1e-9)
        overall = (step - self.start) / max(now - self.t0, 1e-9)
        self.t_last, self.last_step = now, step
        eta = (self.total - step) / overall if overall > 0 else float("inf")
        speed = {"steps_per_second": rate, "examples_per_second": rate * self.batch_size}
        if self.enabled:
            eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if np.isfinite(eta) else "?"
            line = (
                f"step {step}/{self.total} ({100 * step / self.total:.0f}%) "
                f"loss {metrics['loss']:.4f} mlm_acc {metrics['mlm_accuracy']:.3f} "
                f"nsp_acc {metrics['nsp_accuracy']:.3f} | {rate:.2f} steps/s "
                f"{rate * self.batch_size:.1f} ex/s | ETA {eta_text}"
            )
            print(line, file=sys.stderr, flush=True)
        return speed


class _SigtermFlag:
    """Turns SIGTERM (preemption notice) into 'checkpoint at the end of this loop, stop'.

    Single-worker only: a multi-worker save is a collective, and a worker that stops
    alone would leave its peers blocked, so there SIGTERM keeps its default (die) and
    the run resumes from the last periodic checkpoint.
    """

    def __init__(self, enabled: bool):
        self.raised = False
        self._previous = None
        if enabled:
            self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self.raised = True

    def restore(self):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def _metrics(totals: dict) -> dict:
    mlm_w = max(totals["mlm_weight_sum"], 1e-6)
    nsp_n = max(totals["nsp_count"], 1.0)
    return {
        "loss": totals["mlm_loss_sum"] / mlm_w + totals["nsp_loss_sum"] / nsp_n,
        "mlm_loss": totals["mlm_loss_sum"] / mlm_w,
        "mlm_accuracy": totals["mlm_correct_sum"] / mlm_w,
        "nsp_loss": totals["nsp_loss_sum"] / nsp_n,
        "nsp_accuracy": totals["nsp_correct_sum"] / nsp_n,
    }


class PretrainingTrainer:
    """Builds the model and optimiser under the strategy, restores, trains, checkpoints.

    Args:
        strategy: any `tf.distribute.Strategy`.
        config: loop settings.
        model_fn: `() -> BertPretrainer`, called inside `strategy.scope()`.
        optimizer_fn: `(trainable_variables) -> optimizer` (see `optimization`), same scope.
        dataset_fn: `(input_context, per_replica_batch_size, skip_batches) -> tf.data.Dataset`
            of `(inputs, labels)`; `skip_batches` = batches this pipeline already consumed.
        bert_config_json: written as `bert_config.json` beside the checkpoints; a resume
            with a different config is refused.
        init_fn: `(pretrainer) -> None`, warm start (`--init_checkpoint`) when there is no
            checkpoint to resume from.
    """

    def __init__(
        self,
        strategy: tf.distribute.Strategy,
        config: TrainConfig,
        model_fn: Callable[[], keras.Model],
        optimizer_fn: Callable,
        dataset_fn: Callable,
        bert_config_json: str,
        init_fn: Callable | None = None,
    ):
        self.strategy = strategy
        self.config = config
        self.dataset_fn = dataset_fn
        self.chief = distribution.is_chief(strategy)
        self.num_replicas = strategy.num_replicas_in_sync
        self.per_replica_batch = check_batch_size(config, self.num_replicas)
        self.multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        _check_resume_config(config.output_dir, bert_config_json)

        with strategy.scope():
            self.pretrainer = model_fn()
            self.variables = self.pretrainer.trainable_variables
            self.optimizer = optimizer_fn(self.variables)
            self.step = tf.Variable(
                0,
                dtype=tf.int64,
                trainable=False,
                name="step",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
        self.checkpoint = tf.train.Checkpoint(
            encoder=self.pretrainer.encoder,
            pretrainer=self.pretrainer,
            optimizer=self.optimizer,
            step=self.step,
            rng=seed_generator_states(self.pretrainer),
        )
        _, task_id = distribution.task_info(strategy)
        self.checkpoint_dir = (
            config.output_dir
            if self.chief
            else os.path.join(config.output_dir, "worker_scratch", f"worker_{task_id}")
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint,
            self.checkpoint_dir,
            max_to_keep=config.keep_checkpoint_max,
            step_counter=self.step,
        )
        latest = tf.train.latest_checkpoint(config.output_dir)
        if latest:
            logger.info("Resuming from %s", latest)
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        elif init_fn is not None:
            init_fn(self.pretrainer)
        if self.chief:
            tf.io.gfile.makedirs(config.output_dir)
            with tf.io.gfile.GFile(os.path.join(config.output_dir, CONFIG_FILE), "w") as f:
                f.write(bert_config_json)
        self._train_loop = self._make_train_loop()

    # --- The step -------------------------------------------------------------------

    def _replica_step(self, inputs: dict, labels: dict):
        """One optimiser step on this replica's (B, ...) share of the global batch."""
        ctx = tf.distribute.get_replica_context()
        accum = self.config.grad_accum_steps
        micro = self.per_replica_batch // accum
        has_nsp = "next_sentence_labels" in labels
        # Global normalisers of the whole step, known from the labels alone.
        local_counts = tf.stack(
            [
                tf.reduce_sum(tf.cast(labels["masked_lm_weights"], tf.float32)),
                tf.cast(tf.shape(labels["next_sentence_labels"])[0] if has_nsp else 0, tf.float32),
            ]
        )
        global_counts = ctx.all_reduce(tf.distribute.ReduceOp.SUM, local_counts)
        mlm_norm = tf.maximum(global_counts[0], 1e-6)
        nsp_norm = tf.maximum(global_counts[1], 1.0)
        scaled = self.config.loss_scaling

        def micro_step(x, y):
            with tf.GradientTape() as tape:
                outputs = self.pretrainer(x, training=True)
                terms = pretraining_loss_terms(y, outputs)
                loss = terms["mlm_loss_sum"] / mlm_norm + terms["nsp_loss_sum"] / nsp_norm
                if scaled:
                    loss = self.optimizer.scale_loss(loss)
            grads = tape.gradient(loss, self.variables)
            # Variables the loss does not reach (the pooler without NSP) get no update.
            used = [i for i, g in enumerate(grads) if g is not None]
            grads = [tf.convert_to_tensor(grads[i]) for i in used]
            return used, grads, tf.stack([terms[name] for name in LOSS_TERM_NAMES])

        def chunk(i):  # Micro-batch i: (M, ...) slices of the replica's batch.
            return tf.nest.map_structure(lambda t: t[i * micro : (i + 1) * micro], (inputs, labels))

        used, grads, terms = micro_step(*chunk(0))
        if accum > 1:
            for i in tf.range(1, accum):
                _, g, t = micro_step(*chunk(i))
                grads = [a + b for a, b in zip(grads, g, strict=True)]
                terms += t
        variables = [self.variables[i] for i in used]

        grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        scale = tf.cast(self.optimizer.dynamic_scale, tf.float32) if scaled else tf.constant(1.0)
        if self.config.clip_norm > 0:
            grads, norm = tf.clip_by_global_norm(grads, self.config.clip_norm * scale)
        else:
            norm = tf.linalg.global_norm(grads)
        self.optimizer.apply(grads, variables)
        terms = ctx.all_reduce(tf.distribute.ReduceOp.SUM, terms)
        return terms, norm / scale

    def _make_train_loop(self):
        replica_step = self._replica_step
        if self.config.jit_compile:
            replica_step = tf.function(replica_step, jit_compile=True)
        strategy = self.strategy

        @tf.function
        def train_loop(iterator, num_steps):
            totals = tf.zeros([len(LOSS_TERM_NAMES)], tf.float32)
            norm = tf.constant(0.0)
            for _ in tf.range(num_steps):
                inputs, labels = next(iterator)
                terms, norms = strategy.run(replica_step, args=(inputs, labels))
                totals += strategy.experimental_local_results(terms)[0]
                norm = strategy.experimental_local_results(norms)[0]
                self.step.assign_add(1)
            return totals, norm

        return train_loop

    # --- The loop -------------------------------------------------------------------

    def _distributed_dataset(self, start_step: int):
        def fn(ctx: tf.distribute.InputContext):
            per_replica = ctx.get_per_replica_batch_size(self.config.train_batch_size)
            batches_per_step = ctx.num_replicas_in_sync // ctx.num_input_pipelines
            return self.dataset_fn(ctx, per_replica, start_step * batches_per_step)

        return self.strategy.distribute_datasets_from_function(fn)

    def train(self) -> dict:
        """Runs to `num_train_steps`; returns (and, on the chief, writes) the final metrics."""
        config = self.config
        start = int(self.step.numpy())
        total = config.num_train_steps
        writer = (
            tf.summary.create_file_writer(os.path.join(config.output_dir, "train"))
            if self.chief
            else tf.summary.create_noop_writer()
        )
        progress = Progress(total, start, config.train_batch_size, self.chief)
        sigterm = _SigtermFlag(enabled=not self.multi_worker)
        metrics_path = os.path.join(
            config.output_dir if self.chief else self.checkpoint_dir, METRICS_FILE
        )
        if start >= total and tf.io.gfile.exists(metrics_path):
            logger.info("Already at --num_train_steps=%d; nothing to do.", total)
            with tf.io.gfile.GFile(metrics_path) as f:
                return json.load(f)
        iterator = iter(self._distributed_dataset(start))
        step = start
        metrics: dict = {}
        t0 = time.monotonic()
        try:
            while step < total and not sigterm.raised:
                next_save = (
                    step // config.save_checkpoints_steps + 1
                ) * config.save_checkpoints_steps
                num_steps = min(config.steps_per_loop, next_save - step, total - step)
                totals, norm = self._train_loop(iterator, tf.constant(num_steps, tf.int64))
                step = int(self.step.numpy())
                metrics = _metrics(dict(zip(LOSS_TERM_NAMES, totals.numpy().tolist(), strict=True)))
                metrics["grad_norm"] = float(norm)
                metrics["learning_rate"] = float(
                    optimization.inner_optimizer(self.optimizer).learning_rate
                )
                metrics.update(progress.update(step, metrics))
                with writer.as_default(step=step):
                    for name, value in metrics.items():
                        tf.summary.scalar(name, value)
                if step % config.save_checkpoints_steps == 0 or step == total or sigterm.raised:
                    self.manager.save(checkpoint_number=step)
        finally:
            sigterm.restore()
            writer.flush()
        elapsed = time.monotonic() - t0
        metrics.update(
            step=step,
            preempted=step < total,
            train_seconds=elapsed,
            examples_per_second_overall=(step - start)
            * config.train_batch_size
            / max(elapsed, 1e-9),
            num_replicas=self.num_replicas,
            weights_global_norm=float(tf.linalg.global_norm([v.value for v in self.variables])),
        )
        tf.io.gfile.makedirs(os.path.dirname(metrics_path))
        with tf.io.gfile.GFile(metrics_path, "w") as f:
            json.dump(metrics, f, indent=2, sort_keys=True)
        return metrics


def _check_resume_config(output_dir: str, bert_config_json: str) -> None:
    """Refuses to resume a run in `output_dir` whose checkpoints have another model config."""
    path = os.path.join(output_dir, CONFIG_FILE)
    if not (tf.train.latest_checkpoint(output_dir) and tf.io.gfile.exists(path)):
        return
    with tf.io.gfile.GFile(path) as f:
        saved = json.load(f)
    current = json.loads(bert_config_json)
    differ = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    if differ:
        raise ValueError(
            f"--output_dir {output_dir} holds checkpoints of another model: {path} differs "
            f"in {differ} ({[(k, saved.get(k), current.get(k)) for k in differ]}). Use a new "
            "--output_dir, or the same --bert_config_file/--preset to resume."
        )

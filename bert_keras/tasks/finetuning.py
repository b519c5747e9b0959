"""Fine-tuning a BERT encoder on a classification, regression or token-classification task.

The library behind `python -m bert_keras.finetune`; nothing here reads flags.

- Text goes through the project's tokenizer and packer (`bert_keras.tokenization`,
  `bert_keras.preprocessing`): the same ids as the pretraining pipeline.
- Training is Keras `fit` under the chosen `tf.distribute` strategy; optimiser AdamW with
  google-research/bert's (GB) schedule (linear warmup over `warmup_proportion` of the
  steps, then linear decay to 0), weight decay 0.01 except LayerNorm and biases, gradients
  clipped to global norm `clip_norm` (under a multi-replica strategy Keras clips each
  replica's gradient before the all-reduce, a close stand-in for GB's clip of the sum).
- Dev is evaluated every epoch (or every `eval_every_steps`); the best checkpoint by the
  task's main metric is kept in `output_dir/best/` (our format: `tf.train.Checkpoint(
  encoder=, model=)`, `bert_config.json`, `vocab.txt`, `task_info.json` with the labels);
  at the end the best checkpoint is restored, dev metrics go to `eval_results.json` and
  test predictions to `predictions/` in GLUE's submission layout.

Dimension legend: B batch, T max_seq_length, C classes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Sequence
from typing import Protocol

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from bert_keras import checkpoints
from bert_keras.config import BertConfig
from bert_keras.models import BertClassifier, BertEncoder, BertTokenClassifier
from bert_keras.preprocessing import BertInputPacker
from bert_keras.tasks import registry
from bert_keras.tasks.data import (
    Columns,
    DataError,
    Example,
    TokenExample,
    check_labels,
    label_list,
)
from bert_keras.tokenization import BertWordPieceTokenizer
from bert_keras.training import distribution, optimization, seeding

MIXED_PRECISION = {"none": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
TASK_INFO = "task_info.json"
BEST_DIR = "best"
IGNORE = -1  # Label id of positions that carry no label (token classification).


@dataclasses.dataclass
class FinetuneOptions:
    task: str
    output_dir: str
    vocab_file: str
    data_dir: str | None = None
    train_file: str | None = None
    dev_file: str | None = None
    test_file: str | None = None
    text_a_column: str = "sentence"
    text_b_column: str | None = None
    label_column: str = "label"
    id_column: str | None = None
    init_checkpoint: str | None = None
    bert_config_file: str | None = None
    preset: str | None = None
    do_lower_case: bool = True
    max_seq_length: int = 128
    train_batch_size: int = 32
    eval_batch_size: int = 64
    learning_rate: float = 2e-5
    num_train_epochs: float = 3.0
    warmup_proportion: float = 0.1
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    dropout_rate: float | None = None  # None: the config's hidden_dropout_prob.
    eval_every_steps: int = 0  # 0: every epoch.
    strategy: str = "one_device"
    mixed_precision: str = "none"
    seed: int = 12345
    deterministic: bool = False
    skip_bad_lines: bool = False


# --- Data ---------------------------------------------------------------------------------


@dataclasses.dataclass
class _Split:
    name: str
    path: str
    examples: list
    submission: str | None = None


def _read(spec, path: str, split: str, skip: bool) -> list:
    examples, stats = spec.read(path, split, skip)
    logging.info("%s", stats.summary())
    return examples


def load_splits(spec: registry.TaskSpec, skip_bad_lines: bool):
    """(train examples, labels, dev splits, test splits); dev labels checked."""
    train = _read(spec, spec.train_file, "train", skip_bad_lines)
    labels = [] if spec.is_regression else label_list(train, spec.train_file)
    if spec.is_regression:
        _check_float_labels(train)
    devs = []
    for name, path in spec.dev_files:
        examples = _read(spec, path, "dev", skip_bad_lines)
        if spec.is_regression:
            _check_float_labels(examples)
        else:
            examples, dropped = check_labels(examples, labels, path, skip_bad_lines)
            if dropped:
                logging.warning(
                    "%s: dropped %d rows with labels unseen in training.", path, dropped
                )
        devs.append(_Split(name, path, examples))
    tests = [
        _Split(name, path, _read(spec, path, "test", skip_bad_lines), submission)
        for name, path, submission in spec.test_files
    ]
    return train, labels, devs, tests


def _check_float_labels(examples: Sequence[Example]) -> None:
    for example in examples:
        try:
            float(str(example.label))
        except ValueError:
            raise DataError(
                f"{example.source}: regression label {example.label!r} is not a number."
            ) from None


class TextFeatures:
    """Sentence (pair) examples -> packed model inputs, with the project's tokenizer and
    packer run as one traced graph per chunk of examples.

    Every split is encoded once up front (int32 arrays, 3 x 4 x T bytes per example:
    ~1.5 KB at T=128), so training and evaluation pay no tokenization per step.
    """

    def __init__(self, tokenizer: BertWordPieceTokenizer, packer: BertInputPacker, is_pair: bool):
        self.tokenizer, self.packer, self.is_pair = tokenizer, packer, is_pair
        spec = tf.TensorSpec([None], tf.string)
        self._pack_fn = tf.function(self._pack, input_signature=[spec, spec])

    def _pack(self, text_a, text_b):
        segments = [self.tokenizer(text_a)]  # (B, (P)) int32
        if self.is_pair:
            segments.append(self.tokenizer(text_b))
        return self.packer(segments)  # dict of (B, T) int32

    def encode(self, examples: Sequence[Example], chunk_size: int = 2048) -> dict[str, np.ndarray]:
        """dict of (N, T) int32 arrays: input_word_ids, input_mask, input_type_ids."""
        parts = []
        for start in range(0, len(examples), chunk_size):
            chunk = examples[start : start + chunk_size]
            a = tf.constant([e.text_a for e in chunk], tf.string)
            b = tf.constant([e.text_b or "" for e in chunk], tf.string)  # Unused if single.
            parts.append({k: v.numpy() for k, v in self._pack_fn(a, b).items()})
        if not parts:
            t = self.packer.max_seq_length
            return {k: np.zeros((0, t), np.int32) for k in _INPUT_NAMES}
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


_INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")


def token_features(
    examples: Sequence[TokenExample],
    tokenizer: BertWordPieceTokenizer,
    labels: Sequence[str],
    max_seq_length: int,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, int]:
    """CoNLL sentences -> packed inputs with each word's label on its FIRST piece.

    Returns (inputs dict of (N, T) int32, label ids (N, T) int32 (IGNORE elsewhere),
    sample weights (N, T) float32, first-piece position of every word (N, W_max) int32
    (-1 for words cut off by max_seq_length), number of words cut off). A word that
    normalises to nothing (a lone control character) is given one [UNK] piece so it keeps
    its label.
    """
    index = {label: i for i, label in enumerate(labels)}
    flat_words = [w for e in examples for w in e.words]
    pieces: list[list[int]] = []
    for start in range(0, len(flat_words), 4096):
        pieces.extend(tokenizer.encode_batch(flat_words[start : start + 4096]))
    n, t = len(examples), max_seq_length
    max_words = max((len(e.words) for e in examples), default=0)
    word_ids = np.full((n, t), tokenizer.pad_id, np.int32)
    mask = np.zeros((n, t), np.int32)
    label_ids = np.full((n, t), IGNORE, np.int32)
    first = np.full((n, max(max_words, 1)), -1, np.int32)
    cut = 0
    cursor = 0
    for row, example in enumerate(examples):
        ids = [tokenizer.cls_id]
        for w in range(len(example.words)):
            word_pieces = pieces[cursor + w] or [tokenizer.unk_id]
            if len(ids) + len(word_pieces) > t - 1:
                cut += len(example.words) - w
                break
            first[row, w] = len(ids)
            if example.labels is not None:
                label_ids[row, len(ids)] = index[example.labels[w]]
            ids.extend(word_pieces)
        cursor += len(example.words)
        ids.append(tokenizer.sep_id)
        word_ids[row, : len(ids)] = ids
        mask[row, : len(ids)] = 1
    inputs = {
        "input_word_ids": word_ids,
        "input_mask": mask,
        "input_type_ids": np.zeros((n, t), np.int32),
    }
    weights = (label_ids != IGNORE).astype(np.float32)
    return inputs, np.maximum(label_ids, 0), weights, first, cut


# --- Model --------------------------------------------------------------------------------


class ModelSource(Protocol):
    """Where the model comes from (FinetuneOptions, or any options with these fields)."""

    init_checkpoint: str | None
    bert_config_file: str | None
    preset: str | None
    max_seq_length: int


def resolve_config(options: ModelSource, vocab_size: int) -> BertConfig:
    """The config of `--init_checkpoint` (read beside it), `--bert_config_file` or `--preset`,
    checked against the vocab and `--max_seq_length`."""
    if options.init_checkpoint:
        config = checkpoints.config_from_checkpoint(options.init_checkpoint)
    elif options.bert_config_file:
        config = BertConfig.from_json_file(options.bert_config_file)
    elif options.preset:
        config = BertConfig.from_preset(options.preset, vocab_size=vocab_size)
    else:
        raise ValueError("Give --init_checkpoint, --bert_config_file or --preset.")
    if config.vocab_size < vocab_size:
        raise ValueError(
            f"--vocab_file has {vocab_size} tokens but the model's vocab_size is "
            f"{config.vocab_size}: use the vocab the model was pretrained with."
        )
    if options.max_seq_length > config.max_position_embeddings:
        raise ValueError(
            f"--max_seq_length={options.max_seq_length} exceeds the model's "
            f"max_position_embeddings={config.max_position_embeddings}."
        )
    return config


def build_model(spec, config: BertConfig, num_outputs: int, dropout_rate: float | None):
    encoder = BertEncoder(**dataclasses.asdict(config))
    rate = config.hidden_dropout_prob if dropout_rate is None else dropout_rate
    head = BertTokenClassifier if spec.kind == registry.TOKEN_CLASSIFICATION else BertClassifier
    return encoder, head(encoder, num_classes=num_outputs, dropout_rate=rate)


def finetuning_optimizer(options, model, total_steps: int):
    """GB's fine-tuning AdamW: linear warmup + decay, no decay on LayerNorm and biases.

    `options` needs learning_rate, warmup_proportion, weight_decay and clip_norm (the
    GLUE and SQuAD options both have them).
    """
    schedule = optimization.WarmupLinearDecay(
        options.learning_rate,
        num_train_steps=total_steps,
        num_warmup_steps=int(total_steps * options.warmup_proportion),
    )
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=options.weight_decay or None,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        global_clipnorm=options.clip_norm or None,
    )
    excluded = optimization.no_decay_variables(model.trainable_variables)
    if excluded:
        optimizer.exclude_from_weight_decay(var_list=excluded)
    return optimizer


# --- Evaluation and outputs ---------------------------------------------------------------


class _Evaluator:
    """Predicts on a split and scores it with the task's metrics."""

    def __init__(self, spec, labels, text_features, tokenizer, options):
        self.spec, self.labels = spec, labels
        self.text_features, self.tokenizer, self.options = text_features, tokenizer, options
        self._cache: dict[int, tuple] = {}

    def _inputs(self, examples):
        key = id(examples)
        if key not in self._cache:
            if self.spec.kind == registry.TOKEN_CLASSIFICATION:
                inputs, _, _, first, cut = token_features(
                    examples, self.tokenizer, self.labels, self.options.max_seq_length
                )
                if cut:
                    logging.warning("%d words past max_seq_length are predicted as O.", cut)
                self._cache[key] = (inputs, first)
            else:
                self._cache[key] = (self.text_features.encode(examples), None)
        return self._cache[key]

    def predict(self, model, examples) -> list:
        """Label strings (classification), floats (regression) or tag lists (tokens)."""
        inputs, first = self._inputs(examples)
        # (N, C) or (N, T, C)
        logits = model.predict(inputs, batch_size=self.options.eval_batch_size, verbose=0)
        if self.spec.is_regression:
            return [float(x) for x in logits[:, 0]]
        if self.spec.kind == registry.TOKEN_CLASSIFICATION:
            ids = np.argmax(logits, axis=-1)  # (N, T)
            fallback = "O" if "O" in self.labels else self.labels[0]
            return [
                [
                    self.labels[ids[row, pos]] if pos >= 0 else fallback
                    for pos in first[row, : len(example.words)]
                ]
                for row, example in enumerate(examples)
            ]
        return [self.labels[i] for i in np.argmax(logits, axis=-1)]

    def score(self, model, examples) -> dict[str, float]:
        predictions = self.predict(model, examples)
        if self.spec.is_regression:
            scores = [float(e.label) for e in examples]
            return registry.compute_metrics(self.spec, scores, predictions, self.labels)
        if self.spec.kind == registry.TOKEN_CLASSIFICATION:
            tags = [list(e.labels) for e in examples]
            return registry.compute_metrics(self.spec, tags, predictions, self.labels)
        index = {label: i for i, label in enumerate(self.labels)}
        return registry.compute_metrics(
            self.spec,
            [index[e.label] for e in examples],
            [index[p] for p in predictions],
            self.labels,
        )


def write_predictions(spec, split: _Split, predictions: list, directory: str) -> str:
    """GLUE's submission layout: `index<TAB>prediction` with a header; CoNLL: word and tag
    per line, a blank line between sentences."""
    tf.io.gfile.makedirs(directory)
    path = os.path.join(directory, split.submission or "test_predictions.tsv")
    with tf.io.gfile.GFile(path, "w") as f:
        if spec.kind == registry.TOKEN_CLASSIFICATION:
            for example, tags in zip(split.examples, predictions, strict=True):
                for word, tag in zip(example.words, tags, strict=True):
                    f.write(f"{word}\t{tag}\n")
                f.write("\n")
        else:
            f.write("index\tprediction\n")
            for i, (example, prediction) in enumerate(
                zip(split.examples, predictions, strict=True)
            ):
                guid = example.guid if ":" not in example.guid else str(i)
                value = f"{prediction:.3f}" if spec.is_regression else prediction
                f.write(f"{guid}\t{value}\n")
    return path


class _BestCheckpoint(keras.callbacks.Callback):
    """After each period: score dev, keep the checkpoint of the best main metric."""

    def __init__(self, evaluator, dev: _Split | None, manager, main_metric, history_path):
        super().__init__()
        self.evaluator, self.dev, self.manager = evaluator, dev, manager
        self.main_metric, self.history_path = main_metric, history_path
        self.best: float | None = None
        self.best_metrics: dict | None = None

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        record = {"step": step, "train_loss": float((logs or {}).get("loss", float("nan")))}
        if self.dev is None:
            self.manager.save(checkpoint_number=step)
        else:
            metrics = self.evaluator.score(self.model, self.dev.examples)
            record[self.dev.name] = metrics
            value = metrics[self.main_metric]
            if self.best is None or value > self.best:
                self.best, self.best_metrics = value, metrics
                self.manager.save(checkpoint_number=step)
                record["saved"] = True
            logging.info("step %d: %s %s", step, self.dev.name, metrics)
        with tf.io.gfile.GFile(self.history_path, "a") as f:
            f.write(json.dumps(record) + "\n")


# --- Run ----------------------------------------------------------------------------------


def run(options: FinetuneOptions, strategy: tf.distribute.Strategy | None = None) -> dict:
    """Fine-tunes, keeps the best checkpoint, writes dev metrics and test predictions.

    Returns {"dev": {split: metrics}, "best_checkpoint": prefix, "predictions": [paths],
    "labels": [...], "num_train_steps": int}.
    """
    if options.mixed_precision not in MIXED_PRECISION:
        raise ValueError(
            f"--mixed_precision={options.mixed_precision!r}; choose one of {tuple(MIXED_PRECISION)}."
        )
    if options.train_batch_size < 1 or options.num_train_epochs <= 0:
        raise ValueError("--train_batch_size and --num_train_epochs must be positive.")
    if strategy is None:
        strategy = distribution.create_strategy(options.strategy)
    # Seeds, dtype policy and op determinism for this run only (restored afterwards).
    with seeding.seeded_run(
        options.seed, MIXED_PRECISION[options.mixed_precision], options.deterministic
    ):
        return _run(options, strategy)


def _run(options: FinetuneOptions, strategy) -> dict:
    columns = Columns(
        options.text_a_column,
        options.text_b_column or None,
        label=options.label_column,
        guid=options.id_column or None,
    )
    spec = registry.get_task(
        options.task,
        data_dir=options.data_dir,
        train_file=options.train_file,
        dev_file=options.dev_file,
        test_file=options.test_file,
        columns=columns,
    )
    train, labels, devs, tests = load_splits(spec, options.skip_bad_lines)
    tokenizer = BertWordPieceTokenizer(options.vocab_file, lower_case=options.do_lower_case)
    packer = BertInputPacker.from_tokenizer(tokenizer, options.max_seq_length)
    config = resolve_config(options, tokenizer.vocab_size)
    num_outputs = 1 if spec.is_regression else len(labels)

    steps_per_epoch = math.ceil(len(train) / options.train_batch_size)
    period = options.eval_every_steps or steps_per_epoch
    periods = max(1, math.ceil(steps_per_epoch * options.num_train_epochs / period))
    total_steps = periods * period  # Rounded up to whole evaluation periods.

    text_features = TextFeatures(tokenizer, packer, spec.is_pair)
    if spec.kind == registry.TOKEN_CLASSIFICATION:
        inputs, label_ids, weights, _, cut = token_features(
            train, tokenizer, labels, options.max_seq_length
        )
        if cut:
            logging.warning("%d training words past --max_seq_length carry no label.", cut)
        train_tensors: tuple = (inputs, label_ids, weights)
    else:
        if spec.is_regression:
            targets = np.array([float(e.label) for e in train], np.float32)
        else:
            index = {label: i for i, label in enumerate(labels)}
            targets = np.array([index[e.label] for e in train], np.int32)
        train_tensors = (text_features.encode(train), targets)
    # Epoch e's order is a pure function of (seed, e): the same for every iterator `fit`
    # opens (a seeded `shuffle(reshuffle_each_iteration=True)` is not; see seeding.py).
    train_ds = seeding.shuffled_batches(train_tensors, options.train_batch_size, options.seed)
    train_ds = train_ds.prefetch(tf.data.AUTOTUNE)

    with strategy.scope():
        encoder, model = build_model(spec, config, num_outputs, options.dropout_rate)
        if options.init_checkpoint:
            fmt = checkpoints.restore_encoder(encoder, options.init_checkpoint)
            logging.info("Encoder restored from %s (%s).", options.init_checkpoint, fmt)
        if spec.is_regression:
            loss = keras.losses.MeanSquaredError()
        else:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(
            optimizer=finetuning_optimizer(options, model, total_steps),
            loss=loss,
            jit_compile=False,
        )

    best_dir = os.path.join(options.output_dir, BEST_DIR)
    tf.io.gfile.makedirs(best_dir)
    config.to_json_file(os.path.join(best_dir, "bert_config.json"))
    with tf.io.gfile.GFile(os.path.join(best_dir, "vocab.txt"), "w") as f:
        f.write("\n".join(tokenizer.vocabulary) + "\n")
    task_info = {
        "task": spec.name,
        "kind": spec.kind,
        "labels": labels,
        "num_classes": num_outputs,
        "is_pair": spec.is_pair,
        "max_seq_length": options.max_seq_length,
        "do_lower_case": options.do_lower_case,
        "vocab_file": "vocab.txt",
        "model_class": type(model).__name__,
        "dropout_rate": model.dropout_rate,
        "main_metric": spec.main_metric,
    }
    with tf.io.gfile.GFile(os.path.join(best_dir, TASK_INFO), "w") as f:
        json.dump(task_info, f, indent=2)
    checkpoint = tf.train.Checkpoint(encoder=encoder, model=model)
    manager = tf.train.CheckpointManager(checkpoint, best_dir, max_to_keep=1)
    evaluator = _Evaluator(spec, labels, text_features, tokenizer, options)
    history_path = os.path.join(options.output_dir, "eval_history.jsonl")
    if tf.io.gfile.exists(history_path):
        tf.io.gfile.remove(history_path)
    best_callback = _BestCheckpoint(
        evaluator, devs[0] if devs else None, manager, spec.main_metric, history_path
    )

    logging.info(
        "Training %s: %d examples, labels %s, %d steps (%d per evaluation), %d replica(s).",
        spec.name, len(train), labels, total_steps, period, strategy.num_replicas_in_sync,
    )  # fmt: skip
    start = time.time()
    model.fit(
        train_ds,
        epochs=periods,
        steps_per_epoch=period,
        callbacks=[best_callback],
        shuffle=False,  # The batches are shuffled (seeded) above.
        verbose=0,
    )
    train_seconds = time.time() - start

    checkpoint.read(manager.latest_checkpoint).expect_partial()
    results = {split.name: evaluator.score(model, split.examples) for split in devs}
    predictions = []
    for split in tests:
        predicted = evaluator.predict(model, split.examples)
        predictions.append(
            write_predictions(
                spec, split, predicted, os.path.join(options.output_dir, "predictions")
            )
        )
    summary = {
        "task": spec.name,
        "dev": results,
        "best_checkpoint": manager.latest_checkpoint,
        "predictions": predictions,
        "labels": labels,
        "num_train_steps": total_steps,
        "train_examples": len(train),
        "train_seconds": train_seconds,
        "num_replicas": strategy.num_replicas_in_sync,
    }
    with tf.io.gfile.GFile(os.path.join(options.output_dir, "eval_results.json"), "w") as f:
        json.dump(summary, f, indent=2)
    task_info["best_dev"] = results
    with tf.io.gfile.GFile(os.path.join(best_dir, TASK_INFO), "w") as f:
        json.dump(task_info, f, indent=2)
    return summary

r"""SQuAD fine-tuning and prediction: the library behind
`python -m bert_keras.finetune --task=squad_v1|squad_v2`.

    python -m bert_keras.finetune --task=squad_v1 \
      --train_file=train-v1.1.json --predict_file=dev-v1.1.json \
      --init_checkpoint=out/pretrain --vocab_file=out/vocab.txt --do_lower_case \
      --max_seq_length=384 --doc_stride=128 --max_query_length=64 \
      --train_batch_size=32 --learning_rate=3e-5 --num_train_epochs=2 \
      --n_best_size=20 --max_answer_length=30 --output_dir=out/squad

    # v2: --task=squad_v2 [--null_score_diff_threshold=0.0]
    # Prediction only, from a fine-tuned run: --init_checkpoint=out/squad/final, no train_file.
    # Serving: python -m bert_keras.export --kind=squad --checkpoint=out/squad/final ...

- Training: every window of every question is one example (GB's `run_squad.py`); the
  loss is the mean of the start and end cross-entropies over all T positions; AdamW with
  GB's linear warmup/decay, weight decay except LayerNorm and biases, global-norm
  clipping. The checkpoint after the last step goes to `output_dir/final/` (our format,
  `tf.train.Checkpoint(encoder=, model=)`, with bert_config.json, vocab.txt and
  task_info.json for `bert_keras.export --kind=squad`).
- Prediction: logits of every window -> `predictions.json`, `nbest_predictions.json`
  (and `null_odds.json` for v2) in `output_dir`; when the file has gold answers, exact
  match / F1 go to `eval_results.json` with what was read, skipped and counted.

Nothing here reads flags; `define_flags`/`options_from_flags` serve `bert_keras.finetune`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from absl import flags, logging

from bert_keras import checkpoints
from bert_keras.models import BertEncoder, BertSpanLabeler
from bert_keras.squad.evaluate import evaluate
from bert_keras.squad.features import check_lengths, convert_examples_to_features
from bert_keras.squad.postprocess import predict_answers, write_predictions
from bert_keras.squad.reader import gold_answers, read_squad
from bert_keras.tasks.finetuning import MIXED_PRECISION, finetuning_optimizer, resolve_config
from bert_keras.tokenization import BertWordPieceTokenizer
from bert_keras.training import distribution, seeding

TASKS = {"squad_v1": False, "squad_v2": True}  # task -> version_2_with_negative
FINAL_DIR = "final"
TASK_INFO = "task_info.json"
MODEL_CLASS = "BertSpanLabeler"


@dataclasses.dataclass
class SquadOptions:
    task: str
    output_dir: str
    vocab_file: str
    train_file: str | None = None
    predict_file: str | None = None
    init_checkpoint: str | None = None
    bert_config_file: str | None = None
    preset: str | None = None
    do_lower_case: bool = True
    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    train_batch_size: int = 32
    eval_batch_size: int = 64
    learning_rate: float = 3e-5
    num_train_epochs: float = 2.0
    warmup_proportion: float = 0.1
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float = 0.0
    strategy: str = "one_device"
    mixed_precision: str = "none"
    seed: int = 12345
    deterministic: bool = False

    @property
    def version_2_with_negative(self) -> bool:
        return TASKS[self.task]


# --- Flags (for bert_keras.finetune) --------------------------------------------------------


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the SQuAD-only flags (those the fine-tuning entry point does not have)."""
    ours = {
        "predict_file": (flags.DEFINE_string, None, "SQuAD JSON to predict (and score)."),
        "doc_stride": (flags.DEFINE_integer, 128, "SQuAD: pieces between the starts of windows."),
        "max_query_length": (flags.DEFINE_integer, 64, "SQuAD: question pieces kept (more: cut)."),
        "n_best_size": (flags.DEFINE_integer, 20, "SQuAD: starts/ends tried per window."),
        "max_answer_length": (flags.DEFINE_integer, 30, "SQuAD: longest answer, in pieces."),
        "null_score_diff_threshold": (
            flags.DEFINE_float,
            0.0,
            "SQuAD v2: answer \"\" when the null score minus the best span's exceeds this.",
        ),
    }  # fmt: skip
    for name, (define, default, help_text) in ours.items():
        if name not in flag_values:
            define(name, default, help_text, flag_values=flag_values)  # type: ignore[operator]


def options_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> SquadOptions:
    values: dict[str, Any] = {
        field.name: flag_values[field.name].value
        for field in dataclasses.fields(SquadOptions)
        if field.name in flag_values and flag_values[field.name].value is not None
    }
    return SquadOptions(**values)


# --- Model and data -------------------------------------------------------------------------


def _restore_span_labeler(model, path: str) -> str:
    return checkpoints.restore_finetuned_model(
        model,
        path,
        "--init_checkpoint",
        "give --train_file to fine-tune it first, or the final/ folder of a SQuAD run.",
    )


def _features(path, options, tokenizer, is_training):
    examples, read_stats = read_squad(path, options.version_2_with_negative)
    logging.info("%s", read_stats.summary())
    features, feature_stats = convert_examples_to_features(
        examples,
        tokenizer,
        options.max_seq_length,
        options.doc_stride,
        options.max_query_length,
        is_training,
    )
    logging.info("%s: %s", path, feature_stats.summary())
    report = {
        "file": path,
        "articles": read_stats.articles,
        "paragraphs": read_stats.paragraphs,
        "questions": read_stats.questions,
        "examples": feature_stats.examples,
        "windows": feature_stats.windows,
        **dict(read_stats.counts),
        **dict(feature_stats.counts),
    }
    return examples, features, report


def _write_json(path: str, value) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(value, f, indent=2)


def task_info(options: SquadOptions, vocab_name: str = "vocab.txt") -> dict:
    """What `bert_keras.export --kind=squad` needs besides the weights."""
    return {
        "task": options.task,
        "kind": "span_labeling",
        "model_class": MODEL_CLASS,
        "version_2_with_negative": options.version_2_with_negative,
        "max_seq_length": options.max_seq_length,
        "doc_stride": options.doc_stride,
        "max_query_length": options.max_query_length,
        "max_answer_length": options.max_answer_length,
        "n_best_size": options.n_best_size,
        "null_score_diff_threshold": options.null_score_diff_threshold,
        "do_lower_case": options.do_lower_case,
        "vocab_file": vocab_name,
    }


# --- Run ------------------------------------------------------------------------------------


def run(options: SquadOptions, strategy: tf.distribute.Strategy | None = None) -> dict:
    """Trains on `train_file` (if given), predicts `predict_file` (if given); returns and
    writes (`output_dir/eval_results.json`) a summary with the metrics."""
    if options.task not in TASKS:
        raise ValueError(f"--task={options.task!r}: SQuAD tasks are {sorted(TASKS)}.")
    if not options.train_file and not options.predict_file:
        raise ValueError(f"--task={options.task} needs --train_file and/or --predict_file.")
    if not options.train_file and not options.init_checkpoint:
        raise ValueError("Prediction without --train_file needs --init_checkpoint.")
    if options.mixed_precision not in MIXED_PRECISION:
        raise ValueError(
            f"--mixed_precision={options.mixed_precision!r}; "
            f"choose one of {tuple(MIXED_PRECISION)}."
        )
    check_lengths(options.max_seq_length, options.max_query_length, options.doc_stride)
    if strategy is None:
        strategy = distribution.create_strategy(options.strategy)
    with seeding.seeded_run(
        options.seed, MIXED_PRECISION[options.mixed_precision], options.deterministic
    ):
        return _run(options, strategy)


def _run(options: SquadOptions, strategy) -> dict:
    tokenizer = BertWordPieceTokenizer(options.vocab_file, lower_case=options.do_lower_case)
    config = resolve_config(options, tokenizer.vocab_size)
    tf.io.gfile.makedirs(options.output_dir)
    summary: dict = {"task": options.task, "num_replicas": strategy.num_replicas_in_sync}

    train = None
    if options.train_file:
        _, train_features, summary["train"] = _features(
            options.train_file, options, tokenizer, is_training=True
        )
        if not len(train_features):
            raise ValueError(f"--train_file={options.train_file}: no usable training example.")
        train = train_features

    with strategy.scope():
        encoder = BertEncoder(**dataclasses.asdict(config))
        model = BertSpanLabeler(encoder)
        if train is not None and options.init_checkpoint:
            fmt = checkpoints.restore_encoder(encoder, options.init_checkpoint)
            logging.info("Encoder restored from %s (%s).", options.init_checkpoint, fmt)
        elif options.init_checkpoint:  # Prediction only: the whole model from our run.
            _restore_span_labeler(model, options.init_checkpoint)

    if train is not None:
        steps = max(1, math.ceil(len(train) * options.num_train_epochs / options.train_batch_size))
        # Batch order a pure function of (seed, epoch): fit's extra iterator cannot change it.
        dataset = seeding.shuffled_batches(
            (train.model_inputs(), train.labels()), options.train_batch_size, options.seed
        ).prefetch(tf.data.AUTOTUNE)
        with strategy.scope():
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            model.compile(
                optimizer=finetuning_optimizer(options, model, steps),
                loss={"start_logits": loss, "end_logits": loss},
                loss_weights={"start_logits": 0.5, "end_logits": 0.5},
                jit_compile=False,
            )
        logging.info("Training %s: %d windows, %d steps.", options.task, len(train), steps)
        start = time.time()
        history = model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
        summary["train"].update(
            steps=steps,
            seconds=time.time() - start,
            mean_train_loss=float(history.history["loss"][-1]),  # Over all steps.
        )
        final_dir = os.path.join(options.output_dir, FINAL_DIR)
        summary["checkpoint"] = checkpoints.save_checkpoint(
            encoder, final_dir, config=config, model=model
        )
        with tf.io.gfile.GFile(os.path.join(final_dir, "vocab.txt"), "w") as f:
            f.write("\n".join(tokenizer.vocabulary) + "\n")
        _write_json(os.path.join(final_dir, TASK_INFO), task_info(options))

    if options.predict_file:
        examples, features, summary["predict"] = _features(
            options.predict_file, options, tokenizer, is_training=False
        )
        logits = model.predict(
            features.model_inputs(), batch_size=options.eval_batch_size, verbose=0
        )  # {"start_logits", "end_logits"}: (N, T) each
        predictions = predict_answers(
            examples,
            features,
            np.asarray(logits["start_logits"]),
            np.asarray(logits["end_logits"]),
            n_best_size=options.n_best_size,
            max_answer_length=options.max_answer_length,
            version_2_with_negative=options.version_2_with_negative,
            null_score_diff_threshold=options.null_score_diff_threshold,
        )
        summary["predictions"] = write_predictions(predictions, options.output_dir)
        gold = gold_answers(examples)
        has_gold = any(gold.values()) or any(e.is_impossible for e in examples)
        if has_gold:
            summary["metrics"] = evaluate(gold, predictions.answers, predictions.null_odds)
            logging.info("%s: %s", options.predict_file, summary["metrics"])
        else:
            logging.info("%s has no gold answers: not scored.", options.predict_file)
    _write_json(os.path.join(options.output_dir, "eval_results.json"), summary)
    return summary

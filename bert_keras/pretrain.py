r"""Pretrains a BERT encoder (masked LM + next sentence) on TFRecords of the pipeline.

    python -m bert_keras.pretrain \
      --input_file='gs://bucket/records/train-*.tfrecord.gz' --output_dir=gs://bucket/run1 \
      --preset=base --vocab_file=vocab.txt --max_seq_length=128 \
      --max_predictions_per_seq=20 --train_batch_size=256 --learning_rate=1e-4 \
      --num_train_steps=900000 --num_warmup_steps=10000 --strategy=mirrored

Flag names are google-research/bert's `run_pretraining.py` ones where the same thing
exists. Rerun the same command after a preemption: it resumes from the last checkpoint in
`--output_dir`. Phase 2 (longer sequences): a new `--output_dir`, `--max_seq_length=512`
and `--init_checkpoint=<phase-1 output_dir>`.

Length-binned records (`create_pretraining_data --length_bins=64,96`): give all bins in one
glob, `--input_file='PREFIX-bin*'`, and the longest length as `--max_seq_length`; each batch
comes from one bin, padded only to its length (`bert_keras.training.inputs`).
"""

import signal
from typing import Any

from absl import app, flags

from bert_keras.cli import exit_on_user_error
from bert_keras.training import distribution, optimization, pretraining

_INPUT_FILE = flags.DEFINE_string(
    "input_file",
    None,
    "Comma-separated globs of pretraining TFRecord files; files of several record lengths "
    "(length bins, 'PREFIX-bin*') train in batches of one length each.",
)
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Checkpoints, bert_config.json, TensorBoard logs and metrics.json."
)
_BERT_CONFIG_FILE = flags.DEFINE_string(
    "bert_config_file", None, "The model's bert_config.json (GB's or ours)."
)
_PRESET = flags.DEFINE_string(
    "preset", None, "tiny|mini|small|medium|base|large, instead of a config."
)
_VOCAB_FILE = flags.DEFINE_string(
    "vocab_file", None, "WordPiece vocab: --masking=dynamic's special ids; --preset's vocab_size."
)
_INIT_CHECKPOINT = flags.DEFINE_string(
    "init_checkpoint", None, "Warm start: ours (e.g. phase 1), Google TF1 or Hugging Face."
)
_MAX_SEQ_LENGTH = flags.DEFINE_integer(
    "max_seq_length", 128, "Must match the records (the longest ones, with length bins)."
)
_MAX_PREDICTIONS = flags.DEFINE_integer(
    "max_predictions_per_seq", 20, "Must match static records; the cap of dynamic masking."
)
_TRAIN_BATCH_SIZE = flags.DEFINE_integer("train_batch_size", 32, "Global batch per step.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 5e-5, "Peak learning rate.")
_NUM_TRAIN_STEPS = flags.DEFINE_integer("num_train_steps", 100_000, "Optimiser steps.")
_NUM_WARMUP_STEPS = flags.DEFINE_integer("num_warmup_steps", 10_000, "Linear warmup steps.")
_SAVE_CHECKPOINTS_STEPS = flags.DEFINE_integer("save_checkpoints_steps", 1000, "Checkpoint period.")
_KEEP_CHECKPOINT_MAX = flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints kept.")
_ITERATIONS_PER_LOOP = flags.DEFINE_integer(
    "iterations_per_loop", 100, "Steps per tf.function call (and per log line)."
)
_STRATEGY = flags.DEFINE_enum(
    "strategy", "one_device", distribution.STRATEGIES, "tf.distribute strategy."
)
_TPU = flags.DEFINE_string("tpu", None, "TPU address or name ('local' on a TPU VM).")
_MIXED_PRECISION = flags.DEFINE_enum(
    "mixed_precision", "none", tuple(pretraining.MIXED_PRECISION), "fp16 adds loss scaling."
)
_JIT_COMPILE = flags.DEFINE_bool("jit_compile", False, "XLA-compile the train step.")
_OPTIMIZER = flags.DEFINE_enum("optimizer", "adamw", optimization.OPTIMIZERS, "Optimiser.")
_WEIGHT_DECAY = flags.DEFINE_float("weight_decay", 0.01, "Not on LayerNorm and biases.")
_CLIP_NORM = flags.DEFINE_float("clip_norm", 1.0, "Global-norm gradient clipping; 0 = off.")
_GRAD_ACCUM_STEPS = flags.DEFINE_integer(
    "grad_accum_steps", 1, "Micro-batches per step (each replica's batch split in this many)."
)
_MASKING = flags.DEFINE_enum("masking", "static", pretraining.MASKING, "dynamic = RoBERTa.")
_MASKED_LM_PROB = flags.DEFINE_float("masked_lm_prob", 0.15, "Dynamic masking rate.")
_RANDOM_SEED = flags.DEFINE_integer("random_seed", 12345, "Initialisation, input order, masks.")
_DETERMINISTIC = flags.DEFINE_bool(
    "deterministic", False, "tf.config.experimental.enable_op_determinism() (slower)."
)
_SHUFFLE_BUFFER_SIZE = flags.DEFINE_integer("shuffle_buffer_size", 10_000, "Records.")

flags.mark_flags_as_required(["input_file", "output_dir"])


@exit_on_user_error("pretrain")
def main(argv):
    del argv
    # Every other field is the flag of the same name.
    fields: dict[str, Any] = {
        name: flags.FLAGS[name].value
        for name in pretraining.PretrainOptions.__dataclass_fields__
        if name != "bert_config"
    }
    options = pretraining.PretrainOptions(
        bert_config=pretraining.load_bert_config(
            _BERT_CONFIG_FILE.value, _PRESET.value, _VOCAB_FILE.value
        ),
        **fields,
    )
    metrics = pretraining.run(options)
    if metrics["preempted"]:
        # Stopped by SIGTERM after a checkpoint: not finished, rerun the same command.
        raise SystemExit(128 + signal.SIGTERM)


def cli():
    app.run(main)


if __name__ == "__main__":
    cli()

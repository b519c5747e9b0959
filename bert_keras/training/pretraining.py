"""Pretraining from records to checkpoints: everything `python -m bert_keras.pretrain` does,
without reading flags (so tests and notebooks call it with plain arguments).

Every check on the inputs (globs, record shapes, model config, warm-start checkpoint)
runs before the model is built, so bad input fails in seconds with the flag named.
"""

from __future__ import annotations

import dataclasses
import json
import logging

import keras
import tensorflow as tf

from bert_keras import records
from bert_keras.checkpoints import config_from_checkpoint, detect_format, restore_pretrainer
from bert_keras.config import BertConfig
from bert_keras.models import BertEncoder, BertPretrainer
from bert_keras.training import (
    distribution,
    dynamic_masking,
    inputs,
    optimization,
    seeding,
    trainer,
)

logger = logging.getLogger(__name__)

MIXED_PRECISION = {"none": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
MASKING = ("static", "dynamic")

# Fields that must agree between the model and a warm-start checkpoint's config.
_ARCHITECTURE_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
    "norm_first",
)


@dataclasses.dataclass
class PretrainOptions:
    input_file: str
    output_dir: str
    bert_config: BertConfig
    init_checkpoint: str | None = None
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    train_batch_size: int = 32
    learning_rate: float = 5e-5
    num_train_steps: int = 100_000
    num_warmup_steps: int = 10_000
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    iterations_per_loop: int = 100
    strategy: str = "one_device"
    tpu: str | None = None
    mixed_precision: str = "none"
    jit_compile: bool = False
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    grad_accum_steps: int = 1
    masking: str = "static"
    vocab_file: str | None = None
    masked_lm_prob: float = 0.15
    random_seed: int = 12345
    deterministic: bool = False
    shuffle_buffer_size: int = 10_000


def load_bert_config(
    bert_config_file: str | None, preset: str | None, vocab_file: str | None = None
) -> BertConfig:
    """`--bert_config_file` or `--preset` (exactly one); a preset takes its vocab_size from
    `--vocab_file` when given."""
    if bool(bert_config_file) == bool(preset):
        raise ValueError("Give exactly one of --bert_config_file and --preset.")
    if bert_config_file:
        if not tf.io.gfile.exists(bert_config_file):
            raise ValueError(f"--bert_config_file {bert_config_file!r} does not exist.")
        return BertConfig.from_json_file(bert_config_file)
    overrides = {}
    if vocab_file:
        with tf.io.gfile.GFile(vocab_file) as f:
            overrides["vocab_size"] = sum(1 for _ in f)
    assert preset  # Exactly one of the two was given, and it was not the config file.
    return BertConfig.from_preset(preset, **overrides)


def resolve_init_checkpoint(path: str, config: BertConfig):
    """Checks `--init_checkpoint` (ours, Google TF1 or Hugging Face) against the model
    config before anything is built; returns the warm-start function, which restores the
    encoder and, where the checkpoint has them, the pretraining heads."""
    fmt = detect_format(path)  # ValueError naming the path if it is no checkpoint.
    try:
        saved = config_from_checkpoint(path)
    except ValueError:
        saved = None  # No config beside it: restore_pretrainer still checks every shape.
    if saved is not None:
        differ = [
            (name, getattr(saved, name), getattr(config, name))
            for name in _ARCHITECTURE_FIELDS
            if getattr(saved, name) != getattr(config, name)
        ]
        if differ:
            raise ValueError(
                f"--init_checkpoint {path} does not fit the model config: (field, checkpoint, "
                f"model) {differ}."
            )

    def init(pretrainer: keras.Model) -> None:
        logger.info("Warm start from %s", path)
        if fmt != "ours":
            restore_pretrainer(pretrainer, path)
            return
        # Our pretraining checkpoints also hold `optimizer=`, whose variable list is the
        # shorter object path to most weights, so their keys read
        # `optimizer/_trainable_variables/N` rather than `pretrainer/...`; restoring through
        # the object graph finds the heads whatever the keys say.
        prefix = tf.train.latest_checkpoint(path) if tf.io.gfile.isdir(path) else path
        status = tf.train.Checkpoint(encoder=pretrainer.encoder, pretrainer=pretrainer).read(prefix)
        status.assert_existing_objects_matched().expect_partial()

    return init


def run(options: PretrainOptions) -> dict:
    """Validates the inputs, then trains; returns the final metrics."""
    o = options
    if o.masking not in MASKING:
        raise ValueError(f"--masking={o.masking!r}; choose one of {MASKING}.")
    if o.mixed_precision not in MIXED_PRECISION:
        raise ValueError(
            f"--mixed_precision={o.mixed_precision!r}; choose one of {tuple(MIXED_PRECISION)}."
        )
    if o.max_seq_length > o.bert_config.max_position_embeddings:
        raise ValueError(
            f"--max_seq_length={o.max_seq_length} exceeds the model's max_position_embeddings "
            f"({o.bert_config.max_position_embeddings})."
        )
    if not 0 < o.max_predictions_per_seq <= o.max_seq_length:
        raise ValueError(
            f"--max_predictions_per_seq={o.max_predictions_per_seq} must be in [1, --max_seq_length]."
        )
    for name in (
        "save_checkpoints_steps",
        "iterations_per_loop",
        "grad_accum_steps",
        "num_train_steps",
    ):
        if getattr(o, name) <= 0:
            raise ValueError(f"--{name} must be positive, got {getattr(o, name)}.")

    if o.deterministic:
        tf.config.experimental.enable_op_determinism()
    # Before any op runs: the multi-worker and TPU strategies configure the runtime.
    strategy = distribution.create_strategy(o.strategy, o.tpu)

    files = records.list_record_files(o.input_file)
    dynamic = o.masking == "dynamic"
    # Several groups: length bins (create_pretraining_data --length_bins), one stream each.
    groups = inputs.check_record_groups(
        files,
        records.RecordSpec(o.max_seq_length, o.max_predictions_per_seq),
        dynamic,
        o.bert_config.vocab_size,
    )
    spec = groups[-1].spec
    if len(groups) > 1 and isinstance(strategy, tf.distribute.TPUStrategy):
        # Batches of several lengths reach the step as (B, None); TPUs compile static shapes.
        raise ValueError(
            f"--input_file holds records of {len(groups)} lengths (length bins): "
            f"{sorted(g.spec.max_seq_length for g in groups)}, which --strategy=tpu cannot "
            "train on; give one bin's files per run."
        )
    if len(groups) > 1:
        logger.info(
            "Length bins: %s",
            ", ".join(
                f"{g.spec.max_seq_length} ({len(g.files)} files, ~{g.num_records:.0f} records)"
                for g in groups
            ),
        )
    masking = None
    if dynamic:
        if not o.vocab_file:
            raise ValueError(
                "--masking=dynamic needs --vocab_file (ids of [MASK] and the special tokens)."
            )
        masking = dynamic_masking.MaskingConfig.from_vocab_file(
            o.vocab_file, o.max_predictions_per_seq, masked_lm_prob=o.masked_lm_prob
        )
        if masking.vocab_size != o.bert_config.vocab_size:
            raise ValueError(
                f"--vocab_file has {masking.vocab_size} tokens but the model's vocab_size is "
                f"{o.bert_config.vocab_size}."
            )
    init_fn = (
        resolve_init_checkpoint(o.init_checkpoint, o.bert_config) if o.init_checkpoint else None
    )

    def model_fn():
        encoder = BertEncoder(**dataclasses.asdict(o.bert_config))
        return BertPretrainer(encoder, next_sentence=spec.has_next_sentence)

    schedule = optimization.WarmupLinearDecay(
        o.learning_rate, o.num_train_steps, o.num_warmup_steps
    )

    def optimizer_fn(variables):
        return optimization.create_optimizer(
            o.optimizer,
            schedule,
            variables,
            weight_decay=o.weight_decay,
            loss_scaling=o.mixed_precision == "fp16",
        )

    def dataset_fn(ctx, batch_size, skip_batches):
        if len(groups) > 1:
            return inputs.binned_pretraining_dataset(
                groups,
                batch_size,
                seed=o.random_seed,
                skip_batches=skip_batches,
                masking=masking,
                input_context=ctx,
                shuffle_buffer_size=o.shuffle_buffer_size,
            )
        return inputs.pretraining_dataset(
            list(groups[0].files),
            spec,
            batch_size,
            seed=o.random_seed,
            skip_batches=skip_batches,
            masking=masking,
            input_context=ctx,
            shuffle_buffer_size=o.shuffle_buffer_size,
        )

    config = trainer.TrainConfig(
        output_dir=o.output_dir,
        train_batch_size=o.train_batch_size,
        num_train_steps=o.num_train_steps,
        save_checkpoints_steps=o.save_checkpoints_steps,
        keep_checkpoint_max=o.keep_checkpoint_max,
        steps_per_loop=o.iterations_per_loop,
        grad_accum_steps=o.grad_accum_steps,
        clip_norm=o.clip_norm,
        jit_compile=o.jit_compile,
        loss_scaling=o.mixed_precision == "fp16",
    )
    bert_config_json = (
        json.dumps(dataclasses.asdict(o.bert_config), indent=2, sort_keys=True) + "\n"
    )
    # Seeds and dtype policy for this run; the process's policy is restored afterwards.
    with seeding.seeded_run(o.random_seed, MIXED_PRECISION[o.mixed_precision]):
        return trainer.PretrainingTrainer(
            strategy, config, model_fn, optimizer_fn, dataset_fn, bert_config_json, init_fn
        ).train()

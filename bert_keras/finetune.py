r"""Fine-tunes a BERT encoder on a GLUE task, a generic TSV/CSV/JSONL task or CoNLL NER.

    python -m bert_keras.finetune --task=mrpc --data_dir=glue/MRPC \
      --init_checkpoint=out/pretrain --vocab_file=out/vocab.txt --do_lower_case \
      --max_seq_length=128 --train_batch_size=32 --learning_rate=2e-5 \
      --num_train_epochs=3 --warmup_proportion=0.1 --output_dir=out/mrpc

    python -m bert_keras.finetune --task=classification --train_file=train.jsonl \
      --dev_file=dev.jsonl --text_a_column=review --label_column=stars ...

    python -m bert_keras.finetune --task=conll --data_dir=conll2003 ...

`--init_checkpoint`: ours (a directory or prefix), google-research/bert's
`bert_model.ckpt` or a Hugging Face directory; the model config is read beside it. From
scratch (random init): `--preset=tiny|mini|small|medium|base|large` or
`--bert_config_file`. Flag names are google-research/bert's `run_classifier.py` ones.

Writes `output_dir/best/` (the best checkpoint by the task's dev metric, in our format,
with bert_config.json, vocab.txt and task_info.json), `eval_history.jsonl`,
`eval_results.json` and `predictions/` (GLUE submission files).
"""

from typing import Any

from absl import app, flags

from bert_keras.cli import exit_on_user_error
from bert_keras.squad import train as squad
from bert_keras.tasks import registry
from bert_keras.tasks.finetuning import MIXED_PRECISION, FinetuneOptions, run
from bert_keras.training import distribution

squad.define_flags()  # --predict_file, --doc_stride, ... for --task=squad_v1|squad_v2.

_TASK = flags.DEFINE_string("task", None, f"One of {registry.TASK_NAMES} (GLUE names).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Directory with the task's files.")
_TRAIN_FILE = flags.DEFINE_string("train_file", None, "Overrides data_dir's train file.")
_DEV_FILE = flags.DEFINE_string("dev_file", None, "Overrides data_dir's dev file.")
_TEST_FILE = flags.DEFINE_string("test_file", None, "Overrides data_dir's test file.")
_TEXT_A_COLUMN = flags.DEFINE_string("text_a_column", "sentence", "Generic tasks: first text.")
_TEXT_B_COLUMN = flags.DEFINE_string("text_b_column", None, "Generic tasks: second text.")
_LABEL_COLUMN = flags.DEFINE_string("label_column", "label", "Generic tasks: label column.")
_ID_COLUMN = flags.DEFINE_string("id_column", None, "Generic tasks: id for test predictions.")
_INIT_CHECKPOINT = flags.DEFINE_string(
    "init_checkpoint", None, "Ours, Google TF1 or Hugging Face; config read beside it."
)
_BERT_CONFIG_FILE = flags.DEFINE_string("bert_config_file", None, "Random init from a config.")
_PRESET = flags.DEFINE_string("preset", None, "Random init from a preset size.")
_VOCAB_FILE = flags.DEFINE_string("vocab_file", None, "The WordPiece vocab of the model.")
_DO_LOWER_CASE = flags.DEFINE_bool("do_lower_case", True, "Uncased model (lower + strip accents).")
_MAX_SEQ_LENGTH = flags.DEFINE_integer("max_seq_length", 128, "Padded length, with specials.")
_TRAIN_BATCH_SIZE = flags.DEFINE_integer("train_batch_size", 32, "Global batch size.")
_EVAL_BATCH_SIZE = flags.DEFINE_integer("eval_batch_size", 64, "Dev/test batch size.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 2e-5, "Peak learning rate (AdamW).")
_NUM_TRAIN_EPOCHS = flags.DEFINE_float("num_train_epochs", 3.0, "Passes over the train set.")
_WARMUP_PROPORTION = flags.DEFINE_float("warmup_proportion", 0.1, "Share of steps warming up.")
_WEIGHT_DECAY = flags.DEFINE_float("weight_decay", 0.01, "Not on LayerNorm and biases.")
_CLIP_NORM = flags.DEFINE_float("clip_norm", 1.0, "Global-norm gradient clipping; 0 = off.")
_DROPOUT_RATE = flags.DEFINE_float("dropout_rate", None, "Head dropout; default the config's.")
_EVAL_EVERY_STEPS = flags.DEFINE_integer(
    "eval_every_steps", 0, "Evaluate dev every N steps (0: every epoch)."
)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Checkpoints, metrics, predictions.")
_STRATEGY = flags.DEFINE_enum(
    "strategy", "one_device", ("one_device", "mirrored"), "tf.distribute strategy."
)
_MIXED_PRECISION = flags.DEFINE_enum(
    "mixed_precision", "none", tuple(MIXED_PRECISION), "bf16/fp16 compute (fp16 loss-scaled)."
)
_SEED = flags.DEFINE_integer("seed", 12345, "Initialisation, dropout and data order.")
_DETERMINISTIC = flags.DEFINE_bool(
    "deterministic", False, "tf.config.experimental.enable_op_determinism() (slower)."
)
_SKIP_BAD_LINES = flags.DEFINE_bool(
    "skip_bad_lines", False, "Skip and count malformed rows instead of stopping with an error."
)

flags.mark_flags_as_required(["task", "vocab_file", "output_dir"])


@exit_on_user_error("finetune")
def main(argv):
    del argv
    # The strategy first: it must exist before any op touches a device.
    strategy = distribution.create_strategy(_STRATEGY.value)
    if _TASK.value in squad.TASKS:
        squad.run(squad.options_from_flags(flags.FLAGS), strategy)
        return
    values: dict[str, Any] = {
        name: flags.FLAGS[name].value
        for name in FinetuneOptions.__dataclass_fields__
        if name in flags.FLAGS
    }
    options = FinetuneOptions(**values)
    run(options, strategy)


def cli():
    app.run(main)


if __name__ == "__main__":
    cli()

r"""Exports a checkpoint as a SavedModel for TF Serving, taking raw text.

    python -m bert_keras.export --kind=classifier \
        --checkpoint=out/finetune/sst2/best --export_dir=out/serving

writes `out/serving/bert_classifier/1/` (the next free version on each run), served with
`tensorflow_model_server --model_name=bert_classifier --model_base_path=$PWD/out/serving/bert_classifier`.
See docs/serving.md for the signatures and how to query them.
"""

from __future__ import annotations

from absl import app, flags, logging

from bert_keras.cli import exit_on_user_error
from bert_keras.serving import exporter

_KIND = flags.DEFINE_enum(
    "kind", "classifier", exporter.KINDS, "Which model to export (see bert_keras/serving/)."
)
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint",
    None,
    "Checkpoint prefix or folder (ours; for encoder/pretrainer also Google "
    "TF1 or Hugging Face). Not needed for --kind=preprocessor.",
)
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None, "Root of the versioned layout: writes EXPORT_DIR/MODEL_NAME/VERSION/."
)
_MODEL_NAME = flags.DEFINE_string("model_name", None, "Folder under --export_dir; bert_<kind>.")
_VERSION = flags.DEFINE_integer("version", None, "Version number; default the next free one.")
_VOCAB_FILE = flags.DEFINE_string(
    "vocab_file",
    None,
    "WordPiece vocabulary; default from the task info or vocab.txt beside the checkpoint.",
)
_DO_LOWER_CASE = flags.DEFINE_boolean(
    "do_lower_case", None, "Lower-case and strip accents; default from the task info, else True."
)
_MAX_SEQ_LENGTH = flags.DEFINE_integer(
    "max_seq_length", None, "Packed length; default from the task info, else 128."
)
_NUM_SEGMENTS = flags.DEFINE_integer(
    "num_segments",
    None,
    "1: `text` input; 2: `text_a` and `text_b` (sentence pairs). "
    "Default from the task info, else 1.",
)
_LABELS = flags.DEFINE_list(
    "labels", None, "Classifier labels in class-id order; default from the task info."
)
_TASK_INFO = flags.DEFINE_string(
    "task_info", None, "The fine-tuning run's task JSON; default: looked up beside the checkpoint."
)
_TOP_K = flags.DEFINE_integer("top_k", 5, "Fill-mask (--kind=pretrainer): predictions per mask.")
_MAX_MASKS = flags.DEFINE_integer("max_masks", 20, "Fill-mask: masks predicted per sequence.")
_INCLUDE_PREPROCESSOR = flags.DEFINE_boolean(
    "include_preprocessor",
    True,
    "--kind=encoder: serving_default on raw text (True) or, as TF "
    "Hub's encoders, on token tensors (False; pair it with a --kind=preprocessor export).",
)


@exit_on_user_error("export")
def main(argv):
    del argv
    options = exporter.ExportOptions(
        vocab_file=_VOCAB_FILE.value,
        do_lower_case=_DO_LOWER_CASE.value,
        max_seq_length=_MAX_SEQ_LENGTH.value,
        num_segments=_NUM_SEGMENTS.value,
        labels=_LABELS.value,
        top_k=_TOP_K.value,
        max_masks=_MAX_MASKS.value,
        include_preprocessor=_INCLUDE_PREPROCESSOR.value,
        task_info=_TASK_INFO.value,
    )
    export_dir = _EXPORT_DIR.value
    assert export_dir is not None  # A required flag.
    path = exporter.export(
        _KIND.value,
        export_dir,
        checkpoint=_CHECKPOINT.value,
        options=options,
        model_name=_MODEL_NAME.value,
        version=_VERSION.value,
    )
    logging.info("Exported %s to %s", _KIND.value, path)
    print(path)


def cli():
    flags.mark_flags_as_required(["export_dir"])
    app.run(main)


if __name__ == "__main__":
    cli()

"""From a checkpoint to a served SavedModel: rebuild the model, restore it, wrap it in its
serving module and publish it in TF Serving's versioned layout.

Kinds:
- `classifier`: a fine-tuned `BertClassifier` (our checkpoint with `model=`), with the
  label list of the fine-tuning run -> `ClassifierModule`;
- `encoder`: the encoder of any checkpoint (ours, Google's, Hugging Face's) ->
  `EncoderModule`, with a raw-text `serving_default` or, TF Hub style, tokens only;
- `pretrainer`: the encoder + masked-LM head -> `FillMaskModule`;
- `preprocessor`: text -> token inputs only -> `PreprocessorModule` (no checkpoint needed);
- `squad`: a SQuAD run's `final/` (`BertSpanLabeler`) -> `squad_module.SquadModule`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import tensorflow as tf

from bert_keras.serving import export_layout

KINDS = ("classifier", "encoder", "pretrainer", "preprocessor", "squad")
VOCAB_NAMES = ("vocab.txt",)
# Files the fine-tuning run may write beside its checkpoint, describing the task.
TASK_INFO_NAMES = ("task_info.json", "labels.json")


@dataclasses.dataclass
class ExportOptions:
    """What the model does not carry itself; the flags of `bert_keras.export`.

    None means "from the task info (fine-tuning's JSON) if there is one, else the default".
    """

    vocab_file: str | None = None
    do_lower_case: bool | None = None
    max_seq_length: int | None = None
    num_segments: int | None = None
    labels: list[str] | None = None
    num_classes: int | None = None
    model_class: str | None = None
    top_k: int = 5
    max_masks: int = 20
    include_preprocessor: bool = True
    task_info: str | None = None


DEFAULTS = {"do_lower_case": True, "max_seq_length": 128, "num_segments": 1}


def checkpoint_dir(checkpoint: str) -> str:
    """The folder of a checkpoint given as a folder or a prefix (`.../ckpt-5`)."""
    return checkpoint if tf.io.gfile.isdir(checkpoint) else os.path.dirname(checkpoint)


def find_beside(checkpoint: str | None, names: tuple[str, ...]) -> str | None:
    """The first of `names` in the checkpoint's folder or its parent, if any."""
    if not checkpoint:
        return None
    folder = checkpoint_dir(checkpoint)
    for candidate_dir in (folder, os.path.dirname(folder.rstrip("/"))):
        for name in names:
            candidate = os.path.join(candidate_dir, name)
            if tf.io.gfile.exists(candidate):
                return candidate
    return None


def read_task_info(path: str) -> dict[str, Any]:
    """Fine-tuning's `task_info.json` -> the export options it settles.

    Reads `labels` (class-id order; empty for regression), `num_classes`, `is_pair`,
    `max_seq_length`, `do_lower_case`, `vocab_file` (relative to the JSON's folder) and
    `model_class` where present.
    """
    with tf.io.gfile.GFile(path) as f:
        try:
            info = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg}).") from e
    if not isinstance(info, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(info).__name__}.")
    options: dict[str, Any] = {}
    if info.get("labels") is not None:
        options["labels"] = [str(label) for label in info["labels"]]
    if info.get("num_classes") is not None:
        options["num_classes"] = int(info["num_classes"])
    if info.get("is_pair") is not None:
        options["num_segments"] = 2 if info["is_pair"] else 1
    for key in ("max_seq_length", "do_lower_case", "model_class"):
        if info.get(key) is not None:
            options[key] = info[key]
    if info.get("vocab_file"):
        options["vocab_file"] = os.path.join(os.path.dirname(path), info["vocab_file"])
    return options


def resolve_options(checkpoint: str | None, options: ExportOptions) -> ExportOptions:
    """Fills the unset options from the task info, files beside the checkpoint, defaults.

    Explicit options win over the task info, which wins over the defaults.
    """
    resolved = dataclasses.replace(options)
    info_path = options.task_info or find_beside(checkpoint, TASK_INFO_NAMES)
    info = read_task_info(info_path) if info_path else {}
    for key, value in info.items():
        if getattr(resolved, key) is None:
            setattr(resolved, key, value)
    if resolved.vocab_file is None:
        resolved.vocab_file = find_beside(checkpoint, VOCAB_NAMES)
    if resolved.vocab_file is None:
        raise ValueError(
            "No vocabulary: pass --vocab_file (none in the task info, no vocab.txt beside "
            f"--checkpoint={checkpoint})."
        )
    for key, value in DEFAULTS.items():
        if getattr(resolved, key) is None:
            setattr(resolved, key, value)
    if resolved.num_segments not in (1, 2):
        raise ValueError(f"--num_segments={resolved.num_segments}: must be 1 or 2.")
    return resolved


def build_preprocessor(vocabulary, do_lower_case: bool, max_seq_length: int):
    """A `BertTextPreprocessor`: `vocabulary` is a token list or a vocab file path."""
    from bert_keras.preprocessing import BertTextPreprocessor

    return BertTextPreprocessor.from_vocabulary(
        vocabulary, max_seq_length=max_seq_length, lower_case=do_lower_case
    )


def _check_vocab_fits(encoder, preprocessor, checkpoint: str) -> None:
    vocab_size = preprocessor.tokenizer.vocab_size
    if vocab_size != encoder.vocab_size:
        raise ValueError(
            f"--vocab_file has {vocab_size} tokens but the model of --checkpoint={checkpoint} "
            f"has vocab_size={encoder.vocab_size}; pass the vocabulary it was trained with."
        )


def _restore_classifier(classifier, checkpoint: str) -> None:
    from bert_keras.checkpoints import restore_finetuned_model

    restore_finetuned_model(
        classifier,
        checkpoint,
        "--checkpoint",
        "export a pretraining checkpoint with --kind=encoder or --kind=pretrainer.",
    )


def build_serving_module(kind: str, checkpoint: str | None, options: ExportOptions):
    """The serving module of `kind`, restored from `checkpoint`, for resolved `options`."""
    from bert_keras.serving.classifier_module import ClassifierModule
    from bert_keras.serving.encoder_module import EncoderModule
    from bert_keras.serving.fill_mask_module import FillMaskModule
    from bert_keras.serving.preprocessor_module import PreprocessorModule

    if kind not in KINDS:
        raise ValueError(f"--kind={kind!r}: choose one of {', '.join(KINDS)}.")
    if options.vocab_file is None or options.do_lower_case is None or not options.max_seq_length:
        raise ValueError("build_serving_module takes options filled by resolve_options.")
    preprocessor = build_preprocessor(
        options.vocab_file, options.do_lower_case, options.max_seq_length
    )
    if kind == "preprocessor":
        return PreprocessorModule(preprocessor)
    if not checkpoint:
        raise ValueError(f"--kind={kind} needs --checkpoint.")
    if kind == "squad":
        from bert_keras.serving.squad_module import build_squad_module

        return build_squad_module(checkpoint, options)

    from bert_keras.checkpoints import config_from_checkpoint, restore_encoder, restore_pretrainer
    from bert_keras.models import BertClassifier, BertEncoder, BertPretrainer

    config = config_from_checkpoint(checkpoint)
    if options.max_seq_length > config.max_position_embeddings:
        raise ValueError(
            f"--max_seq_length={options.max_seq_length} exceeds the model's "
            f"max_position_embeddings={config.max_position_embeddings} (--checkpoint={checkpoint})."
        )
    encoder = BertEncoder(**dataclasses.asdict(config))
    _check_vocab_fits(encoder, preprocessor, checkpoint)
    if kind == "encoder":
        restore_encoder(encoder, checkpoint)
        return EncoderModule(
            encoder,
            preprocessor if options.include_preprocessor else None,
            num_segments=options.num_segments,
            max_seq_length=options.max_seq_length,
        )
    if kind == "pretrainer":
        pretrainer = BertPretrainer(encoder)
        restore_pretrainer(pretrainer, checkpoint)
        return FillMaskModule(
            pretrainer,
            preprocessor,
            num_segments=options.num_segments,
            top_k=options.top_k,
            max_masks=options.max_masks,
        )
    if options.model_class not in (None, "BertClassifier"):
        raise ValueError(
            f"--checkpoint={checkpoint} holds a {options.model_class} (task info); only "
            "sequence classifiers export with --kind=classifier (--kind=encoder exports its "
            "encoder)."
        )
    labels = list(options.labels or [])
    num_classes = options.num_classes or len(labels)
    if num_classes == 0 or (num_classes > 1 and len(labels) != num_classes):
        raise ValueError(
            f"--kind=classifier: {len(labels)} labels for {num_classes or 'unknown'} classes; "
            f"the task info beside --checkpoint={checkpoint} has no label list. Pass "
            "--labels=a,b,... in class-id order (or --task_info)."
        )
    classifier = BertClassifier(encoder, num_classes=num_classes)
    _restore_classifier(classifier, checkpoint)
    return ClassifierModule(
        classifier, preprocessor, labels=labels, num_segments=options.num_segments
    )


def export(
    kind: str,
    export_dir: str,
    checkpoint: str | None = None,
    options: ExportOptions | None = None,
    model_name: str | None = None,
    version: int | None = None,
) -> str:
    """Builds the `kind` SavedModel and publishes it as `export_dir/model_name/VERSION`.

    `model_name` defaults to `bert_<kind>`; `version` to the next free integer.
    Returns the published folder.
    """
    options = resolve_options(checkpoint, options or ExportOptions())
    module = build_serving_module(kind, checkpoint, options)
    return export_layout.write_versioned(
        export_dir, model_name or f"bert_{kind}", module.save, version=version
    )

"""Fine-tuning tasks by name: the GLUE tasks in their released TSV layout, generic
classification/regression from TSV/CSV/JSONL, and CoNLL token classification.

A task knows its files (under `--data_dir`), how to read each split, its metrics, and the
GLUE submission file its test predictions go to. Labels are never listed here: they are
read from the training data.

GLUE layouts (as released by gluebenchmark.com; GB's `run_classifier.py` reads the same):

| task  | train/dev columns                                   | test id | submission       |
|-------|-----------------------------------------------------|---------|------------------|
| CoLA  | no header: source, label, orig. label, sentence     | index   | CoLA.tsv         |
| SST-2 | sentence, label                                     | index   | SST-2.tsv        |
| MRPC  | Quality, #1 ID, #2 ID, #1 String, #2 String         | index   | MRPC.tsv         |
| STS-B | index, genre, ..., sentence1, sentence2, score      | index   | STS-B.tsv        |
| QQP   | id, qid1, qid2, question1, question2, is_duplicate  | id      | QQP.tsv          |
| MNLI  | index, ..., sentence1, sentence2, ..., gold_label   | index   | MNLI-m/-mm.tsv   |
| QNLI  | index, question, sentence, label                    | index   | QNLI.tsv         |
| RTE   | index, sentence1, sentence2, label                  | index   | RTE.tsv          |
| WNLI  | index, sentence1, sentence2, label                  | index   | WNLI.tsv         |

Test files have the same header without the label column(s) (CoLA's test: index, sentence).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

import numpy as np

from bert_keras.tasks import metrics
from bert_keras.tasks.data import (
    Columns,
    DataError,
    read_conll_examples,
    read_delimited_examples,
    read_jsonl_examples,
)

CLASSIFICATION = "classification"
REGRESSION = "regression"
TOKEN_CLASSIFICATION = "token_classification"
KINDS = (CLASSIFICATION, REGRESSION, TOKEN_CLASSIFICATION)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: str
    metric_names: tuple[str, ...]
    main_metric: str
    train_file: str = "train.tsv"
    # (split name, file name) in data_dir; the first dev split picks the best checkpoint.
    dev_files: tuple[tuple[str, str], ...] = (("dev", "dev.tsv"),)
    # (split name, file name, submission file name).
    test_files: tuple[tuple[str, str, str], ...] = (("test", "test.tsv", "test.tsv"),)
    # read(path, split, skip_bad_lines) -> (examples, stats); split is train|dev|test.
    read: Callable | None = None
    is_pair: bool = False

    @property
    def is_regression(self) -> bool:
        return self.kind == REGRESSION


def _glue_reader(labelled: Columns, test: Columns, labelled_header: bool = True) -> Callable:
    def read(path: str, split: str, skip_bad_lines: bool):
        with_labels = split != "test"
        return read_delimited_examples(
            path,
            labelled if with_labels else test,
            has_header=labelled_header if with_labels else True,
            with_labels=with_labels,
            skip_bad_lines=skip_bad_lines,
            delimiter="\t",
        )

    return read


def _pair(a: str, b: str, label: str, guid: str = "index") -> tuple[Columns, Columns]:
    return Columns(a, b, label=label), Columns(a, b, guid=guid)


def _glue(name, kind, metric_names, columns, submission, **kwargs) -> TaskSpec:
    labelled, test = columns
    header = kwargs.pop("labelled_header", True)
    return TaskSpec(
        name=name,
        kind=kind,
        metric_names=metric_names,
        main_metric="glue_score",
        test_files=kwargs.pop("test_files", (("test", "test.tsv", submission),)),
        read=_glue_reader(labelled, test, header),
        is_pair=labelled.text_b is not None,
        **kwargs,
    )


_ACC = ("accuracy",)
_F1_ACC = ("f1", "accuracy")
GLUE_TASKS: dict[str, TaskSpec] = {
    "cola": _glue(
        "cola",
        CLASSIFICATION,
        ("matthews_corrcoef",),
        (Columns(3, label=1), Columns("sentence", guid="index")),
        "CoLA.tsv",
        labelled_header=False,
    ),
    "sst-2": _glue(
        "sst-2",
        CLASSIFICATION,
        _ACC,
        (Columns("sentence", label="label"), Columns("sentence", guid="index")),
        "SST-2.tsv",
    ),
    "mrpc": _glue(
        "mrpc", CLASSIFICATION, _F1_ACC, _pair("#1 String", "#2 String", "Quality"), "MRPC.tsv"
    ),
    "sts-b": _glue(
        "sts-b",
        REGRESSION,
        ("pearson", "spearman"),
        _pair("sentence1", "sentence2", "score"),
        "STS-B.tsv",
    ),
    "qqp": _glue(
        "qqp",
        CLASSIFICATION,
        _F1_ACC,
        _pair("question1", "question2", "is_duplicate", "id"),
        "QQP.tsv",
    ),
    "mnli": _glue(
        "mnli",
        CLASSIFICATION,
        _ACC,
        _pair("sentence1", "sentence2", "gold_label"),
        None,
        dev_files=(("dev_matched", "dev_matched.tsv"), ("dev_mismatched", "dev_mismatched.tsv")),
        test_files=(
            ("test_matched", "test_matched.tsv", "MNLI-m.tsv"),
            ("test_mismatched", "test_mismatched.tsv", "MNLI-mm.tsv"),
        ),
    ),
    "qnli": _glue("qnli", CLASSIFICATION, _ACC, _pair("question", "sentence", "label"), "QNLI.tsv"),
    "rte": _glue("rte", CLASSIFICATION, _ACC, _pair("sentence1", "sentence2", "label"), "RTE.tsv"),
    "wnli": _glue(
        "wnli", CLASSIFICATION, _ACC, _pair("sentence1", "sentence2", "label"), "WNLI.tsv"
    ),
}
_ALIASES = {
    "sst2": "sst-2",
    "stsb": "sts-b",
    "sts_b": "sts-b",
    "sst_2": "sst-2",
    "generic": CLASSIFICATION,
}
GENERIC_TASKS = (CLASSIFICATION, "generic", REGRESSION, "conll")
TASK_NAMES = tuple(GLUE_TASKS) + GENERIC_TASKS


def generic_task(
    kind: str,
    columns: Columns,
    train_file: str,
    dev_file: str | None,
    test_file: str | None,
) -> TaskSpec:
    """A classification/regression task over TSV, CSV or JSONL files (by extension), with
    named text and label columns (a header row for TSV/CSV, keys for JSONL)."""
    if kind not in (CLASSIFICATION, REGRESSION):
        raise ValueError(f"kind must be {CLASSIFICATION!r} or {REGRESSION!r}, got {kind!r}.")

    def read(path: str, split: str, skip_bad_lines: bool):
        with_labels = split != "test"
        cols = columns if with_labels else dataclasses.replace(columns, label=None)
        if os.path.splitext(path)[1].lower() in (".jsonl", ".json"):
            return read_jsonl_examples(
                path, cols, with_labels=with_labels, skip_bad_lines=skip_bad_lines
            )
        return read_delimited_examples(
            path,
            cols,
            has_header=True,
            with_labels=with_labels,
            skip_bad_lines=skip_bad_lines,
        )

    metric_names = ("accuracy", "matthews_corrcoef") if kind == CLASSIFICATION else (
        "pearson", "spearman"
    )  # fmt: skip
    return TaskSpec(
        name=kind,
        kind=kind,
        metric_names=metric_names,
        main_metric="accuracy" if kind == CLASSIFICATION else "glue_score",
        train_file=train_file,
        dev_files=(("dev", dev_file),) if dev_file else (),
        test_files=(("test", test_file, "test_predictions.tsv"),) if test_file else (),
        read=read,
        is_pair=columns.text_b is not None,
    )


def conll_task(train_file: str, dev_file: str | None, test_file: str | None) -> TaskSpec:
    def read(path: str, split: str, skip_bad_lines: bool):
        return read_conll_examples(path, with_labels=split != "test", skip_bad_lines=skip_bad_lines)

    return TaskSpec(
        name="conll",
        kind=TOKEN_CLASSIFICATION,
        metric_names=("precision", "recall", "f1", "token_accuracy"),
        main_metric="f1",
        train_file=train_file,
        dev_files=(("dev", dev_file),) if dev_file else (),
        test_files=(("test", test_file, "test_predictions.conll"),) if test_file else (),
        read=read,
    )


def get_task(
    name: str,
    *,
    data_dir: str | None = None,
    train_file: str | None = None,
    dev_file: str | None = None,
    test_file: str | None = None,
    columns: Columns | None = None,
) -> TaskSpec:
    """The task `name` with absolute file paths. Explicit files override `data_dir`'s.

    GLUE tasks: files under `data_dir` in GLUE's names. `classification`/`regression`:
    `columns` required. `conll`: data_dir/{train,dev,test}.txt unless files are given.
    A missing dev or test file (not given, not in data_dir) just drops that split.
    """
    key = _ALIASES.get(name.lower(), name.lower())
    if key in GLUE_TASKS:
        spec = GLUE_TASKS[key]
    elif key in (CLASSIFICATION, REGRESSION):
        if columns is None:
            raise ValueError(f"--task={name} needs --text_a_column (and --label_column).")
        spec = generic_task(key, columns, "train.tsv", "dev.tsv", "test.tsv")
    elif key == "conll":
        spec = conll_task("train.txt", "dev.txt", "test.txt")
    else:
        raise ValueError(f"--task={name!r}; choose one of {TASK_NAMES}.")

    def locate(explicit: str | None, default: str) -> str | None:
        if explicit:
            return explicit
        if data_dir:
            path = os.path.join(data_dir, default)
            return path if os.path.exists(path) or "://" in path else None
        return None

    train = train_file or (os.path.join(data_dir, spec.train_file) if data_dir else None)
    if not train:
        raise ValueError("Give --data_dir or --train_file.")
    dev: tuple[tuple[str, str], ...]
    test: tuple[tuple[str, str, str], ...]
    if dev_file:
        dev = ((spec.dev_files[0][0] if spec.dev_files else "dev", dev_file),)
    else:
        dev = tuple((n, p) for n, f in spec.dev_files if (p := locate(None, f)))
    if test_file:
        submission = spec.test_files[0][2] if spec.test_files else "test_predictions.tsv"
        test = (("test", test_file, submission),)
    else:
        test = tuple((n, p, s) for n, f, s in spec.test_files if (p := locate(None, f)))
    return dataclasses.replace(spec, train_file=train, dev_files=dev, test_files=test)


# --- Metrics ------------------------------------------------------------------------------


def compute_metrics(
    spec: TaskSpec, labels: Sequence, predictions: Sequence, label_names: Sequence[str]
) -> dict[str, float]:
    """The task's metrics; `glue_score` is their mean (GLUE's per-task score).

    Classification: label/prediction ids (F1 is of the class named "1", GLUE's positive
    class). Regression: floats. Token classification: lists of tag strings per sentence.
    """
    if spec.kind == TOKEN_CLASSIFICATION:
        result = metrics.entity_f1(labels, predictions)
        flat_true = [t for seq in labels for t in seq]
        flat_pred = [t for seq in predictions for t in seq]
        result["token_accuracy"] = metrics.accuracy(flat_true, flat_pred)
    elif spec.kind == REGRESSION:
        result = {
            "pearson": metrics.pearson(labels, predictions),
            "spearman": metrics.spearman(labels, predictions),
        }
    else:
        result = {"accuracy": metrics.accuracy(labels, predictions)}
        if "f1" in spec.metric_names:
            if "1" not in label_names:
                raise DataError(f"F1 needs the positive label '1'; the labels are {label_names}.")
            result["f1"] = metrics.f1_score(labels, predictions, positive=label_names.index("1"))
        if "matthews_corrcoef" in spec.metric_names:
            result["matthews_corrcoef"] = metrics.matthews_corrcoef(labels, predictions)
    result = {k: float(v) for k, v in result.items() if k in spec.metric_names}
    result["glue_score"] = float(np.mean([result[m] for m in spec.metric_names]))
    return result

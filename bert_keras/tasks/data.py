"""Reading task files: delimited (TSV/CSV) and JSON-lines rows, with errors that name the
file and line, or bad rows skipped and counted when asked.

The GLUE TSV files are read as google-research/bert's `run_classifier.py` reads them:
tab-separated, no quoting (`csv.QUOTE_NONE`), UTF-8.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import json
import os
from collections.abc import Iterator, Sequence

import tensorflow as tf


class DataError(ValueError):
    """A bad input file or row; the message starts with `path:line:`."""


@dataclasses.dataclass(frozen=True)
class Example:
    """One sentence or sentence pair. `label` is the raw label string (None on test)."""

    guid: str  # The id column where the file has one (GLUE test), else "path:line".
    text_a: str
    text_b: str | None = None
    label: str | None = None
    source: str = ""  # "path:line", for error messages.


@dataclasses.dataclass(frozen=True)
class TokenExample:
    """One sentence of a token-classification file: words and their labels."""

    guid: str
    words: tuple[str, ...]
    labels: tuple[str, ...] | None = None
    source: str = ""  # "path:line" of the first word.


@dataclasses.dataclass
class ReadStats:
    """What a reader kept and what it skipped, by reason (with --skip_bad_lines)."""

    path: str
    examples: int = 0
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def summary(self) -> str:
        text = f"{self.path}: {self.examples} examples"
        if self.skipped:
            text += ", skipped " + ", ".join(f"{n} {r}" for r, n in sorted(self.skipped.items()))
        return text


class BadRowHandler:
    """Raises DataError, or (skip=True) counts the reason and lets the caller skip the row."""

    def __init__(self, stats: ReadStats, skip: bool):
        self.stats = stats
        self.skip = skip

    def __call__(self, line: int, reason: str, detail: str) -> None:
        if not self.skip:
            raise DataError(
                f"{self.stats.path}:{line}: {detail} (pass --skip_bad_lines to skip such rows)."
            )
        self.stats.skip(reason)


def open_text(path: str) -> str:
    """The whole file as text; DataError when missing, not UTF-8 or empty."""
    if not tf.io.gfile.exists(path):
        raise DataError(f"{path}: file does not exist.")
    with tf.io.gfile.GFile(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 ({e.reason}).") from None
    if not text.strip():
        raise DataError(f"{path}: file is empty.")
    return text


def delimiter_for(path: str) -> str:
    return "," if os.path.splitext(path)[1].lower() == ".csv" else "\t"


def read_rows(
    path: str, delimiter: str = "\t", quoting: bool = False
) -> Iterator[tuple[int, list]]:
    """(line number, fields) for every non-blank row. TSV without quoting by default (GLUE);
    CSV with standard quoting."""
    text = open_text(path)
    lines = text.splitlines(keepends=True)
    if quoting:
        reader = csv.reader(lines, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
    else:
        reader = csv.reader(lines, delimiter=delimiter, quoting=csv.QUOTE_NONE, quotechar=None)
    for fields in reader:
        line_number = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        yield line_number, fields


@dataclasses.dataclass(frozen=True)
class Columns:
    """Where the fields are: names (looked up in the header) or 0-based indices."""

    text_a: str | int
    text_b: str | int | None = None
    label: str | int | None = None
    guid: str | int | None = None


def read_delimited_examples(
    path: str,
    columns: Columns,
    *,
    has_header: bool,
    with_labels: bool,
    skip_bad_lines: bool = False,
    delimiter: str | None = None,
) -> tuple[list[Example], ReadStats]:
    """Reads a TSV/CSV file of sentences (pairs) into Examples.

    Rows with a different number of fields than the header (or the first row), missing
    columns and empty labels raise DataError naming the file and line, or are skipped and
    counted with `skip_bad_lines`. A missing column in the header is always an error.
    """
    delimiter = delimiter or delimiter_for(path)
    stats = ReadStats(path)
    bad = BadRowHandler(stats, skip_bad_lines)
    rows = read_rows(path, delimiter, quoting=delimiter == ",")
    header: list[str] | None = None
    width: int | None = None
    index: dict[str, int | None] = {}
    examples = []
    for line, fields in rows:
        if has_header and header is None:
            header = [f.strip() for f in fields]
            width = len(header)
            index = {name: _column_index(path, line, header, getattr(columns, name), name)
                     for name in ("text_a", "text_b", "label", "guid")}  # fmt: skip
            if not with_labels:
                index["label"] = None
            continue
        if not index:
            index = {name: getattr(columns, name) for name in ("text_a", "text_b", "label", "guid")}
            if not with_labels:
                index["label"] = None
            for name, position in index.items():
                if isinstance(position, str):
                    raise DataError(
                        f"{path}: column {position!r} ({name}) needs a header, but this file "
                        "is read without one."
                    )
        if width is None:
            width = len(fields)
        if len(fields) != width:
            bad(line, "wrong field count", f"{len(fields)} fields, expected {width}")
            continue
        needed = max(p for p in index.values() if p is not None)
        if needed >= len(fields):
            bad(line, "missing column", f"{len(fields)} fields, column {needed} needed")
            continue
        label = fields[index["label"]].strip() if index["label"] is not None else None
        if with_labels and not label:
            bad(line, "empty label", "empty label")
            continue
        guid_at, text_a_at, text_b_at = index["guid"], index["text_a"], index["text_b"]
        assert text_a_at is not None
        guid = fields[guid_at].strip() if guid_at is not None else f"{path}:{line}"
        examples.append(
            Example(
                guid=guid,
                text_a=fields[text_a_at],
                text_b=fields[text_b_at] if text_b_at is not None else None,
                label=label,
                source=f"{path}:{line}",
            )
        )
    if has_header and header is None:
        raise DataError(f"{path}: no header row.")
    _check_not_empty(path, examples, stats)
    stats.examples = len(examples)
    return examples, stats


def _column_index(path, line, header: Sequence[str], column, role: str) -> int | None:
    if column is None:
        return None
    if isinstance(column, int):
        return column
    if column not in header:
        raise DataError(
            f"{path}:{line}: no column {column!r} ({role}) in the header {list(header)}."
        )
    return header.index(column)


def read_jsonl_examples(
    path: str, columns: Columns, *, with_labels: bool, skip_bad_lines: bool = False
) -> tuple[list[Example], ReadStats]:
    """One JSON object per line; `columns` are keys. Labels may be strings or numbers."""
    stats = ReadStats(path)
    bad = BadRowHandler(stats, skip_bad_lines)
    examples = []
    for line, raw in enumerate(open_text(path).splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as e:
            bad(line, "invalid JSON", f"invalid JSON ({e.msg})")
            continue
        if not isinstance(record, dict):
            bad(line, "not an object", "a JSON object is expected")
            continue
        wanted = [c for c in (columns.text_a, columns.text_b) if c is not None]
        if with_labels and columns.label is not None:
            wanted.append(columns.label)
        missing = [c for c in wanted if c not in record]
        if missing:
            bad(line, "missing column", f"missing key(s) {missing}")
            continue
        label = None
        if with_labels:
            value = record[columns.label]
            label = value if isinstance(value, str) else json.dumps(value)
            if not label.strip():
                bad(line, "empty label", "empty label")
                continue
        guid = str(record[columns.guid]) if columns.guid in record else f"{path}:{line}"
        examples.append(
            Example(
                guid=guid,
                text_a=str(record[columns.text_a]),
                text_b=str(record[columns.text_b]) if columns.text_b is not None else None,
                label=label,
                source=f"{path}:{line}",
            )
        )
    _check_not_empty(path, examples, stats)
    stats.examples = len(examples)
    return examples, stats


def read_conll_examples(
    path: str, *, with_labels: bool = True, skip_bad_lines: bool = False
) -> tuple[list[TokenExample], ReadStats]:
    """CoNLL-style: one word per line, fields separated by whitespace, the label last; a
    blank line ends a sentence; `-DOCSTART-` lines are dropped. Without labels (test), the
    word is the first field."""
    stats = ReadStats(path)
    bad = BadRowHandler(stats, skip_bad_lines)
    examples: list[TokenExample] = []
    words: list[str] = []
    labels: list[str] = []
    start_line = 1

    def flush():
        if words:
            examples.append(
                TokenExample(
                    guid=f"{path}:{start_line}",
                    words=tuple(words),
                    labels=tuple(labels) if with_labels else None,
                    source=f"{path}:{start_line}",
                )
            )
        words.clear()
        labels.clear()

    for line, raw in enumerate(open_text(path).splitlines(), start=1):
        fields = raw.split()
        if not fields:
            flush()
            continue
        if fields[0] == "-DOCSTART-":
            flush()
            continue
        if not words:
            start_line = line
        if with_labels:
            if len(fields) < 2:
                bad(line, "no label", f"a word and a label are needed, got {raw.strip()!r}")
                continue
            labels.append(fields[-1])
        words.append(fields[0])
    flush()
    _check_not_empty(path, examples, stats)
    stats.examples = len(examples)
    return examples, stats


def _check_not_empty(path: str, examples: list, stats: ReadStats) -> None:
    if not examples:
        skipped = f" ({sum(stats.skipped.values())} rows skipped)" if stats.skipped else ""
        raise DataError(f"{path}: no examples{skipped}.")


def label_list(examples: Sequence, path: str) -> list[str]:
    """The labels of the training data, sorted (numerically when all are numbers)."""
    if examples and isinstance(examples[0], TokenExample):
        labels = {label for e in examples for label in e.labels}
    else:
        labels = {e.label for e in examples}
    if not labels:
        raise DataError(f"{path}: no labels.")
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def check_labels(examples: Sequence[Example], labels: Sequence[str], path: str, skip: bool):
    """Dev labels must occur in training; an unknown one is an error naming the row (or is
    dropped and counted with `skip`). Returns (kept examples, number dropped)."""
    known = set(labels)
    kept, dropped = [], 0
    for example in examples:
        ex_labels = example.labels if isinstance(example, TokenExample) else (example.label,)
        ex_labels = ex_labels or ()
        unknown = [label for label in ex_labels if label not in known]
        if unknown:
            if not skip:
                raise DataError(
                    f"{example.source or path}: label {unknown[0]!r} "
                    f"is not in the training labels {list(labels)} (pass --skip_bad_lines to "
                    "drop such rows)."
                )
            dropped += 1
            continue
        kept.append(example)
    return kept, dropped

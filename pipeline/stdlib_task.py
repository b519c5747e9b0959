"""A fine-tuning task derived from the default corpus: which part of the standard library
does a passage come from?

Like `pipeline.sample_corpus`, it needs no download and ships no text: passages are the
installed standard library's docstrings, the label is the top-level package of the file
they come from (`asyncio`, `email`, ...), restricted to the `num_labels` packages with the
most passages. Train/dev/test are split by document (a seeded hashlib of its file path
and index), so a dev passage never comes from a document seen in training. Deterministic for a given Python version.

Writes generic classification TSVs (`index<TAB>sentence<TAB>label` with a header; test
without the label) that `bert_keras.finetune --task=generic` reads:

    python -m pipeline.stdlib_task --output_dir=/tmp/stdlib_task
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import sys

import tensorflow as tf

from pipeline import sample_corpus


def top_level_package(path: str, root: str) -> str:
    """`.../asyncio/tasks.py` -> `asyncio`; `.../json/__init__.py` -> `json`; `os.py` -> `os`."""
    relative = os.path.relpath(path, root)
    first = relative.split(os.sep)[0]
    return first[: -len(".py")] if first.endswith(".py") else first


def split_of(document_id: str, seed: int, dev_fraction: float, test_fraction: float) -> str:
    """A document's split from a stable hash of its id (relative path, so machines agree)."""
    digest = hashlib.sha256(f"{seed}:{document_id}".encode()).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64
    if unit < test_fraction:
        return "test"
    if unit < test_fraction + dev_fraction:
        return "dev"
    return "train"


def passages_of(sentences: list[str], sentences_per_passage: int) -> list[str]:
    """Consecutive sentences of one document joined into passages (a short tail is kept)."""
    return [
        " ".join(sentences[i : i + sentences_per_passage])
        for i in range(0, len(sentences), sentences_per_passage)
    ]


def build_task(
    root: str | None = None,
    num_labels: int = 4,
    sentences_per_passage: int = 2,
    dev_fraction: float = 0.15,
    test_fraction: float = 0.1,
    seed: int = 12345,
) -> dict[str, list[tuple[str, str]]]:
    """{split: [(passage, label)]} for the `num_labels` packages with the most passages."""
    root = root or sample_corpus.stdlib_dir()
    by_package: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    for path in sample_corpus.iter_source_files(root):
        try:
            with open(path, encoding="utf-8") as f:
                source = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        package = top_level_package(path, root)
        relative = os.path.relpath(path, root)
        for index, sentences in enumerate(sample_corpus.documents_from_source(source)):
            for passage in passages_of(sentences, sentences_per_passage):
                by_package[package].append((f"{relative}#{index}", passage))
    # Ties broken by name so the choice is deterministic.
    ranked = sorted(by_package, key=lambda name: (-len(by_package[name]), name))
    labels = sorted(ranked[:num_labels])
    if len(labels) < 2:
        raise ValueError(f"Found passages for {len(labels)} package(s) under {root}; need >= 2.")
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "dev": [], "test": []}
    for label in labels:
        for document_id, passage in by_package[label]:
            split = split_of(document_id, seed, dev_fraction, test_fraction)
            splits[split].append((passage, label))
    return splits


def _clean(text: str) -> str:
    # TSVs are read without quoting: a tab or newline inside a passage would shift columns.
    return " ".join(text.split())


def write_task(output_dir: str, splits: dict[str, list[tuple[str, str]]]) -> dict[str, int]:
    """Writes train.tsv, dev.tsv (index, sentence, label) and test.tsv (index, sentence)."""
    tf.io.gfile.makedirs(output_dir)
    counts = {}
    for split, rows in splits.items():
        with tf.io.gfile.GFile(os.path.join(output_dir, f"{split}.tsv"), "w") as f:
            # GLUE's TSV layout: no quoting, so a quote in a passage stays a plain character.
            if split == "test":
                f.write("index\tsentence\n")
                f.write("".join(f"{i}\t{_clean(p)}\n" for i, (p, _) in enumerate(rows)))
            else:
                f.write("index\tsentence\tlabel\n")
                f.write(
                    "".join(f"{i}\t{_clean(p)}\t{label}\n" for i, (p, label) in enumerate(rows))
                )
        counts[split] = len(rows)
    return counts


def run(argv: list[str] | None = None) -> dict[str, int]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--num_labels", type=int, default=4)
    parser.add_argument("--sentences_per_passage", type=int, default=2)
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args(argv)
    splits = build_task(
        num_labels=args.num_labels,
        sentences_per_passage=args.sentences_per_passage,
        seed=args.seed,
    )
    counts = write_task(args.output_dir, splits)
    labels = sorted({label for _, label in splits["train"]})
    print(f"Wrote {args.output_dir}: {counts}; labels {labels}.")
    return counts


def cli() -> None:
    run(sys.argv[1:])


if __name__ == "__main__":
    cli()

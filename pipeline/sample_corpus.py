"""Builds the default pretraining corpus from the installed Python standard library's docstrings.

Every machine that runs bert-keras has this text, so the demo and the tests need no
download and ship no copied text. The sources are parsed with `ast` (nothing is imported,
so no module runs any code), in sorted path order: the output is the same for a given
Python version.

Output format (google-research/bert's): one sentence per line, a blank line between
documents, UTF-8. A document is a module's docstring, or a class's docstring followed by
the docstrings of its methods; documents with fewer than `min_sentences` sentences are left
out (next-sentence prediction needs pairs).

    python -m pipeline.sample_corpus --output_file=/tmp/corpus.txt
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
import sysconfig
from collections.abc import Iterator

import tensorflow as tf

# Packages that are tests, demos or vendored code: their docstrings are noise.
_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}
_SKIP_PREFIXES = ("test_", "_test")

# A sentence ends at . ! or ? followed by whitespace and an upper-case letter, a quote or a
# bracket; "e.g. foo" and "1.5" do not end one.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(\[`])")
_WHITESPACE = re.compile(r"\s+")
_MIN_SENTENCE_CHARS = 8


def stdlib_dir() -> str:
    return sysconfig.get_paths()["stdlib"]


def iter_source_files(root: str) -> Iterator[str]:
    """Python files under `root`, sorted, skipping tests and third-party packages."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith(".py") and not name.startswith(_SKIP_PREFIXES):
                yield os.path.join(dirpath, name)


def split_sentences(docstring: str) -> list[str]:
    """A docstring -> its sentences, one line each (paragraphs joined, whitespace squeezed).

    Code-like paragraphs (doctest prompts, indented blocks) are dropped.
    """
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", docstring):
        lines = paragraph.splitlines()
        if any(line.lstrip().startswith((">>>", "...", "$ ")) for line in lines):
            continue
        text = _WHITESPACE.sub(" ", paragraph).strip()
        if not text:
            continue
        for sentence in _SENTENCE_END.split(text):
            sentence = sentence.strip()
            if len(sentence) >= _MIN_SENTENCE_CHARS:
                sentences.append(sentence)
    return sentences


def documents_from_source(source: str) -> Iterator[list[str]]:
    """The documents of one module's source: its docstring, then each class (+ methods)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # Files for other Python versions, templates.
        return
    module_doc = ast.get_docstring(tree)
    if module_doc:
        yield split_sentences(module_doc)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            sentences = split_sentences(ast.get_docstring(node) or "")
            for child in node.body:
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    sentences += split_sentences(ast.get_docstring(child) or "")
            yield sentences


def build_corpus(
    root: str | None = None, min_sentences: int = 2, max_bytes: int = 4_000_000
) -> str:
    """The corpus text: documents (one sentence a line) separated by blank lines.

    Stops before the document that would take it over `max_bytes` (UTF-8).
    """
    root = root or stdlib_dir()
    parts: list[str] = []
    size = 0
    for path in iter_source_files(root):
        try:
            with open(path, encoding="utf-8") as f:
                source = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        for sentences in documents_from_source(source):
            if len(sentences) < min_sentences:
                continue
            document = "\n".join(sentences) + "\n"
            encoded_size = len(document.encode("utf-8")) + 1
            if size + encoded_size > max_bytes:
                return "\n".join(parts)
            parts.append(document)
            size += encoded_size
    return "\n".join(parts)


def write_corpus(output_file: str, **kwargs) -> dict[str, int]:
    """Writes the corpus (tf.io.gfile path) and returns {documents, sentences, bytes}."""
    text = build_corpus(**kwargs)
    directory = os.path.dirname(output_file)
    if directory:
        tf.io.gfile.makedirs(directory)
    with tf.io.gfile.GFile(output_file, "w") as f:
        f.write(text)
    documents = [d for d in text.split("\n\n") if d.strip()]
    return {
        "documents": len(documents),
        "sentences": sum(len(d.strip("\n").split("\n")) for d in documents),
        "bytes": len(text.encode("utf-8")),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_file", required=True, help="Where to write the corpus.")
    parser.add_argument(
        "--max_bytes", type=int, default=4_000_000, help="Stop before the corpus exceeds this."
    )
    parser.add_argument("--min_sentences", type=int, default=2, help="Leave out shorter documents.")
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> dict[str, int]:
    args = parse_args(argv)
    stats = write_corpus(
        args.output_file, max_bytes=args.max_bytes, min_sentences=args.min_sentences
    )
    print(
        f"Wrote {args.output_file}: {stats['documents']} documents, {stats['sentences']} "
        f"sentences, {stats['bytes']} bytes (Python {sys.version.split()[0]} docstrings)."
    )
    return stats


def cli() -> None:
    run(sys.argv[1:])


if __name__ == "__main__":
    cli()

"""The default corpus: GB's input format, deterministic, nothing imported."""

from __future__ import annotations

import os

from pipeline import sample_corpus

MODULE = '''"""A module about widgets. It has two sentences.

>>> widget()
'ignored doctest'
"""


class Widget:
    """A widget holds parts. Parts are counted e.g. by size."""

    def count(self):
        """Return the number of parts! Zero when empty."""


class Lonely:
    """Only one sentence here."""


raise SystemExit("never executed: the corpus builder parses, it does not import")
'''


def _tree(tmp_path):
    root = tmp_path / "lib"
    (root / "pkg").mkdir(parents=True)
    (root / "test").mkdir()
    (root / "pkg" / "widgets.py").write_text(MODULE)
    (root / "test" / "test_widgets.py").write_text(MODULE)  # Tests are skipped.
    (root / "broken.py").write_text("def (:\n")  # Unparsable: skipped.
    return str(root)


def test_documents_sentences_and_format(tmp_path):
    root = _tree(tmp_path)
    text = sample_corpus.build_corpus(root)
    documents = text.strip("\n").split("\n\n")
    assert [d.split("\n") for d in documents] == [
        ["A module about widgets.", "It has two sentences."],
        [
            "A widget holds parts.",
            "Parts are counted e.g. by size.",
            "Return the number of parts!",
            "Zero when empty.",
        ],
    ]
    assert sample_corpus.build_corpus(root) == text  # Deterministic.


def test_max_bytes_and_cli(tmp_path):
    output = str(tmp_path / "out" / "corpus.txt")
    stats = sample_corpus.run([f"--output_file={output}", "--max_bytes=20000"])
    text = open(output, encoding="utf-8").read()
    assert 0 < stats["bytes"] == len(text.encode("utf-8")) <= 20000
    assert stats["documents"] == len(text.strip("\n").split("\n\n")) > 5
    assert "\n\n\n" not in text and not any(line.strip() != line for line in text.split("\n"))
    assert os.path.getsize(output) == stats["bytes"]

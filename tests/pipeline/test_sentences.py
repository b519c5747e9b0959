"""Sentence splitting of raw documents: the splitter comparison behind `pipeline.sentences`,
and the documents/jsonl readers (formats, bad input skipped and counted with file:line)."""

from __future__ import annotations

import base64
import errno
import logging
import os
import posixpath
import shutil
import textwrap
import time

import pytest

from pipeline.documents import DocumentLines
from pipeline.sentences import MAX_CHUNK_CHARS, RawReadStats, SentenceSplitter, read_raw_documents

# Hand-checked sample: real prose, the installed standard library's docstrings (read at test
# time, no copied text). For each, the first words of every sentence, checked by hand.
SAMPLE = [
    (
        posixpath,
        ["Common operations on", "Instead of importing", 'The "os.path" name', "Some of this"],
    ),
    (shutil.copymode, ["Copy mode bits", "If follow_symlinks is", "If `lchmod` isn't"]),
    (
        errno,
        [
            "This module makes",
            "The value of",
            "The dictionary errno.errorcode",
            "Symbols that are",
            "To map error",
        ],
    ),
    (
        logging.Filter,
        [
            "Filter instances are",
            "Loggers and Handlers",
            "The base filter",
            "For example, a",
            "If initialized with",
        ],
    ),
    (base64.b64encode, ["Encode the bytes-like", "Optional altchars should", "This allows an"]),
    (time.asctime, ["asctime([tuple]) -> string", "When the time"]),
    (
        textwrap.wrap,
        ["Wrap a single", "Reformat the single", "By default, tabs", "See TextWrapper class"],
    ),
    (
        os.makedirs,
        [
            "makedirs(name [, mode=0o777]",
            "Works like mkdir,",
            "If the target",
            "Otherwise no exception",
            "This is recursive.",
        ],
    ),
]


def _spans(text: str, starts: list[str]) -> set[tuple[int, int]]:
    """Consecutive (start, next start) offsets of pieces found in order in `text`."""
    offsets, position = [], 0
    for piece in starts:
        found = text.find(piece, position)
        assert found >= 0, (piece, text)
        offsets.append(found)
        position = found + len(piece)
    offsets.append(len(text))
    return set(zip(offsets, offsets[1:], strict=False))


def sample_texts() -> list[tuple[str, list[str]]]:
    return [(" ".join(obj.__doc__.split()), starts) for obj, starts in SAMPLE]


def score(split, texts) -> tuple[int, int]:
    """(sentences exactly right, sentences in the sample)."""
    right = total = 0
    for text, starts in texts:
        expected = _spans(text, starts)
        right += len(expected & _spans(text, split(text)))
        total += len(expected)
    return right, total


def tf_split(text: str) -> list[str]:
    import tensorflow as tf
    import tensorflow_text as tft

    fragments = tft.StateBasedSentenceBreaker().break_sentences(tf.constant([text]))
    return [f.decode("utf-8").strip() for f in fragments.to_list()[0]]


def regex_split(text: str) -> list[str]:
    from pipeline.sample_corpus import _SENTENCE_END

    return _SENTENCE_END.split(text)


def test_pysbd_splits_the_hand_checked_sample_best():
    texts = sample_texts()
    splitter = SentenceSplitter()
    scores = {
        "pysbd": score(splitter.split, texts),
        "tensorflow_text.StateBasedSentenceBreaker": score(tf_split, texts),
        "regex": score(regex_split, texts),
    }
    print(scores)  # The figures in pipeline/sentences.py's docstring.
    right, total = scores["pysbd"]
    assert total == 31 and right == total
    assert scores["tensorflow_text.StateBasedSentenceBreaker"][0] < right
    assert scores["regex"][0] < right


def test_regex_splitter_option():
    splitter = SentenceSplitter("regex")
    assert splitter.split("One here.  Two (e.g. this) there! three stays.") == [
        "One here.",
        "Two (e.g. this) there! three stays.",
    ]
    with pytest.raises(ValueError, match="--sentence_splitter"):
        SentenceSplitter("nltk")


def test_long_paragraphs_are_chunked_and_nothing_is_lost():
    splitter = SentenceSplitter()
    text = "This is sentence number one. " * 3000 + "w5 " * 5000  # ~100 kB, one paragraph.
    start = time.perf_counter()
    sentences = splitter.split(text)
    assert time.perf_counter() - start < 30  # Unchunked pysbd needs minutes here.
    assert "".join(sentences).replace(" ", "") == text.replace(" ", "")
    assert sentences[0] == "This is sentence number one."
    assert max(len(s) for s in sentences) <= MAX_CHUNK_CHARS


def _read(lines: list[bytes], input_format: str, boundary: str = "line", field: str = "text"):
    stats = RawReadStats()
    docs = list(read_raw_documents(lines, "f.txt", stats, input_format, boundary, field))
    return docs, stats


def test_documents_per_line_and_per_blank_line_block():
    lines = [b"First doc. Two sentences.\n", b"\n", b"Second\r\n", b"doc, wrapped.\n"]
    docs, stats = _read(lines, "documents", "line")
    assert [d.lines for d in docs] == [
        ["First doc. Two sentences."],
        ["Second"],
        ["doc, wrapped."],
    ]
    docs, stats = _read(lines, "documents", "blank_line")
    assert docs == [
        DocumentLines("f.txt:0", ["First doc. Two sentences."]),
        DocumentLines("f.txt:1", ["Second doc, wrapped."]),
    ]
    assert (stats.documents, stats.lines) == (2, 4)
    split = SentenceSplitter().split_document(docs[0])
    assert split.lines == ["First doc.", "Two sentences."]


def test_jsonl_bad_lines_are_skipped_counted_and_located(caplog):
    lines = [
        b'{"text": "A first. A second.\\nNew paragraph."}\n',
        b"{not json\n",
        b'{"body": "no text field"}\n',
        b"\n",
        b'["a list"]\n',
        b'{"text": 7}\n',
        b'{"text": "  "}\n',
        b'{"body": "B.", "text": "Own field."}\n',
    ]
    with caplog.at_level(logging.WARNING):
        docs, stats = _read(lines, "jsonl")
    assert [d.lines for d in docs] == [["A first. A second.", "New paragraph."], [], ["Own field."]]
    assert [d.doc_id for d in docs] == ["f.txt:0", "f.txt:1", "f.txt:2"]
    assert (stats.lines_invalid_json, stats.records_without_text) == (1, 3)
    assert "f.txt:2: invalid JSON" in caplog.text
    assert "f.txt:3: no string field 'text'" in caplog.text
    assert "f.txt:6: no string field 'text'" in caplog.text
    docs, stats = _read(lines[-1:], "jsonl", field="body")
    assert docs[0].lines == ["B."]


@pytest.mark.parametrize(
    "input_format,splitter", [("documents", "pysbd"), ("jsonl", "pysbd"), ("documents", "regex")]
)
def test_pipeline_reads_raw_formats(tmp_path, input_format, splitter):
    import json
    import random

    from bert_keras import records
    from pipeline import create_pretraining_data, metrics
    from tests.pipeline.pipeline_test_util import WORDS, read_records, write_text, write_vocab

    rng = random.Random(3)
    documents = [
        " ".join(
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))).capitalize() + "."
            for _ in range(rng.randint(3, 8))
        )
        for _ in range(8)
    ]
    if input_format == "jsonl":
        text = "".join(json.dumps({"text": d}) + "\n" for d in documents) + "{broken\n"
    else:
        text = "\n".join(documents) + "\n"
    corpus = write_text(str(tmp_path / "c.txt"), text)
    vocab = write_vocab(str(tmp_path / "vocab.txt"))
    prefix = str(tmp_path / "out" / "p")
    counters = create_pretraining_data.run(
        [
            f"--input_file={corpus}",
            f"--output_file={prefix}",
            f"--vocab_file={vocab}",
            f"--input_format={input_format}",
            f"--sentence_splitter={splitter}",
            "--max_seq_length=32",
            "--max_predictions_per_seq=5",
            "--dupe_factor=1",
            "--noreport",
            "--runner=DirectRunner",
        ]
    )
    expected_sentences = sum(d.count(".") for d in documents)
    assert counters[metrics.DOCUMENTS_READ] == 8
    assert counters[metrics.SENTENCES] == expected_sentences
    assert counters[metrics.LINES_INVALID_JSON] == (input_format == "jsonl")
    serialized = read_records(prefix)
    assert len(serialized) == counters[metrics.INSTANCES] > 0
    assert records.spec_from_record(serialized[0]).has_next_sentence


def test_documents_bad_input_is_skipped_and_counted(tmp_path):
    from pipeline import create_pretraining_data, metrics
    from tests.pipeline.pipeline_test_util import read_records, write_text, write_vocab

    corpus = tmp_path / "corpus"
    write_text(str(corpus / "good.txt"), "W1 w2 w3. W4 w5.\nw6 w7 w8.\n\nW9 w10. W11 w12.\n")
    write_text(str(corpus / "empty.txt"), b"")
    write_text(str(corpus / "bytes.txt"), b"W1 \xff\xfe w2. W3 w4.\r\n\r\n\x00\x01\x7f\n")
    # A 100 kB paragraph: chunked before pysbd, so it takes seconds, not minutes.
    write_text(str(corpus / "long.txt"), ("W5 w6 w7. " * 10_000 + "\n").encode())
    prefix = str(tmp_path / "out" / "p")
    counters = create_pretraining_data.run(
        [
            f"--input_file={corpus}/*.txt",
            f"--output_file={prefix}",
            f"--vocab_file={write_vocab(str(tmp_path / 'vocab.txt'))}",
            "--input_format=documents",
            "--document_boundary=blank_line",
            "--max_seq_length=32",
            "--max_predictions_per_seq=5",
            "--dupe_factor=1",
            "--noreport",
            "--runner=DirectRunner",
        ]
    )
    assert counters[metrics.FILES_READ] == 4
    assert counters[metrics.FILES_WITHOUT_DOCUMENTS] == 1
    assert counters[metrics.LINES_INVALID_UTF8] == 1
    assert counters[metrics.DOCUMENTS_READ] == 5
    assert counters[metrics.DOCUMENTS_SKIPPED_NO_TOKENS] == 1  # The NUL/control-only block.
    # good.txt: 3 + 2 sentences; bytes.txt: 2; long.txt: 10,000.
    assert counters[metrics.SENTENCES] == 10_007
    assert len(read_records(prefix)) == counters[metrics.INSTANCES] > 0

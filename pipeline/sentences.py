"""Raw documents -> sentences: reading `--input_format=documents|jsonl` and splitting.

Formats (UTF-8; undecodable bytes are replaced and counted as for `sentences`):
- `documents`: raw text, one document per line (`--document_boundary=line`, as many dumps
  are shared) or per block of lines between blank lines (`--document_boundary=blank_line`;
  the block's lines are joined by spaces, for hard-wrapped text);
- `jsonl`: one JSON object per line, the document's text in `--jsonl_text_field` (`text`,
  as C4 and Wikipedia dumps have it); each line of the text is a paragraph. A line that is
  not valid JSON, not an object, or lacks the field as a string is skipped, counted and
  logged with its `file:line` (the first `MAX_WARNINGS_PER_FILE` of a file).

Which splitter, measured: quality on the hand-checked sample of tests/pipeline/
test_sentences.py (31 sentences of standard-library docstrings, exact boundaries), speed
from `benchmarks/pipeline_throughput.py --splitters` (1,340 docstrings of the first 60
standard-library files, 329 k characters, one shared core; two runs at load 1-2.3):

| splitter                                   | sentences right | speed               |
|--------------------------------------------|-----------------|---------------------|
| pysbd 0.3 (Golden Rules, pure Python)      | 31/31           | 0.11-0.21 M chars/s |
| tensorflow_text.StateBasedSentenceBreaker  | 20/31           | 1.15-1.3 M chars/s  |
| regex `[.!?]` + space + capital (ours)     | 28/31           | 82-87 M chars/s     |

StateBasedSentenceBreaker breaks after a period followed by a space whatever precedes it:
in a quick check "Dr.", "e.g.", "p.m." and the "os." of "os.path.join()" each ended a
"sentence"; that damages next-sentence pairs and RoBERTa packing alike. The regex cuts
after "e.g." before a capital ("e.g. Windows", "e.g. Linux") and cannot see a sentence
that ends without a period. pysbd gets the sample right: it handles
abbreviations, initials, dotted names and numbers, is maintained, pure Python (installs
wherever Beam runs; nltk's punkt would need a data download). It is the slowest step of
raw input, so it runs after the reshuffle, spread over the workers. pysbd is super-linear
on long paragraphs (96 kB of short sentences: 20 s), so a paragraph longer than
`MAX_CHUNK_CHARS` is first cut at the regex's sentence ends (nearly always true ones), then
each chunk goes to pysbd: linear time, a 1 MB line included.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

from pipeline.documents import DocumentLines, ReadStats, decode_line

MAX_CHUNK_CHARS = 4000
MAX_WARNINGS_PER_FILE = 10
_CHEAP_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(\[`])")
_WHITESPACE = re.compile(r"\s+")


@dataclasses.dataclass
class RawReadStats(ReadStats):
    lines_invalid_json: int = 0
    records_without_text: int = 0
    warnings: int = 0


def _warn(stats: RawReadStats, source: str, line_number: int, message: str) -> None:
    stats.warnings += 1
    if stats.warnings <= MAX_WARNINGS_PER_FILE:
        logging.warning("%s:%d: %s; line skipped.", source, line_number, message)


def read_raw_documents(
    raw_lines: Iterable[bytes],
    source: str,
    stats: RawReadStats,
    input_format: str,
    document_boundary: str = "line",
    text_field: str = "text",
    name: str | None = None,
) -> Iterator[DocumentLines]:
    """A file's lines -> documents whose `lines` are paragraphs (not yet sentences).

    `source` (the path) names the file in warnings; `name` (default: `source`) in ids.
    """
    current: list[str] = []
    name = source if name is None else name

    def emit(paragraphs: list[str]) -> DocumentLines:
        document = DocumentLines(f"{name}:{stats.documents}", paragraphs)
        stats.documents += 1
        return document

    for line_number, raw in enumerate(raw_lines, start=1):
        stats.lines += 1
        line = decode_line(raw, stats).strip()
        if input_format == "jsonl":
            if not line:
                continue
            try:
                record: Any = json.loads(line)
            except ValueError as e:
                stats.lines_invalid_json += 1
                _warn(stats, source, line_number, f"invalid JSON ({e})")
                continue
            text = record.get(text_field) if isinstance(record, dict) else None
            if not isinstance(text, str):
                stats.records_without_text += 1
                _warn(stats, source, line_number, f"no string field {text_field!r}")
                continue
            yield emit([p.strip() for p in text.splitlines() if p.strip()])
        elif document_boundary == "line":
            if line:
                yield emit([line])
        elif line:
            current.append(line)
        elif current:
            yield emit([" ".join(current)])
            current = []
    if current:
        yield emit([" ".join(current)])
    if stats.warnings > MAX_WARNINGS_PER_FILE:
        logging.warning("%s: %d lines skipped in all.", source, stats.warnings)


def _chunks(paragraph: str) -> Iterator[str]:
    """Pieces of at most ~MAX_CHUNK_CHARS, cut at cheap sentence ends, else at spaces."""
    while len(paragraph) > MAX_CHUNK_CHARS:
        window = paragraph[:MAX_CHUNK_CHARS]
        ends = [m.end() for m in _CHEAP_SENTENCE_END.finditer(window)]
        cut = ends[-1] if ends else window.rfind(" ") + 1
        if cut <= 0:
            cut = MAX_CHUNK_CHARS
        yield paragraph[:cut]
        paragraph = paragraph[cut:]
    yield paragraph


SPLITTER_CHOICES = ("pysbd", "regex")


class SentenceSplitter:
    """pysbd (default) or the cheap regex behind one interface; made once per worker.

    `splitter="regex"` trades quality (28/31 against 31/31 on the sample above) for speed
    (~400x): for corpora where the splitting would dominate the job's cost.
    """

    def __init__(self, splitter: str = "pysbd", language: str = "en"):
        if splitter not in SPLITTER_CHOICES:
            raise ValueError(f"--sentence_splitter must be one of {SPLITTER_CHOICES}")
        self._segmenter = None
        if splitter == "pysbd":
            import pysbd

            self._segmenter = pysbd.Segmenter(language=language, clean=False)

    def split(self, paragraph: str) -> list[str]:
        paragraph = _WHITESPACE.sub(" ", paragraph).strip()
        if self._segmenter is None:
            return [s for s in _CHEAP_SENTENCE_END.split(paragraph) if s]
        sentences: list[str] = []
        for chunk in _chunks(paragraph):
            sentences.extend(s.strip() for s in self._segmenter.segment(chunk))
        return [s for s in sentences if s]

    def split_document(self, document: DocumentLines) -> DocumentLines:
        return DocumentLines(
            document.doc_id, [s for paragraph in document.lines for s in self.split(paragraph)]
        )

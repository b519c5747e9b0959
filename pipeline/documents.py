"""Reading documents and tokenizing them in batches.

Input format (google-research/bert's): one sentence per line, a blank (or whitespace-only)
line between documents, UTF-8. Unlike GB, a document never runs across a file boundary.

Bad input is skipped and counted, never fatal: a line that is not valid UTF-8 is decoded
with replacement characters (the tokenizer drops them, as GB's `decode("utf-8", "ignore")`
does) and counted; CR before LF is stripped with the other whitespace; NUL and other control
characters are removed by the tokenizer; a sentence that leaves no token is dropped and
counted (GB drops it too); a document left without sentences is skipped and counted; a file
without any document is counted. So `documents_read = documents_tokenized +
documents_skipped_no_tokens`, and every document is accounted for.

A tokenized document is held as one flat id array plus sentence offsets: pairing then
works on index ranges and slices, and pickling between Beam stages is a few buffers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from pipeline import metrics

# Lines per tokenizer call (eager). Measured on the default corpus (2 shared cores, heavily
# loaded): 4.7k lines/s at 256 lines a call, 9.4k at 1,024; the traced tokenizer gave 11.3k
# at 1,024 and 11.1k at 4,096, so larger calls gain nothing while a worker's memory grows.
# Documents are batched (BatchElements, 32-512 documents of ~12 lines here) and split into
# calls of at most this many lines.
MAX_LINES_PER_TOKENIZER_CALL = 2048


class DocumentLines(NamedTuple):
    # "<file>:<index of the document in the file>", unique and stable; <file> is the path
    # relative to the input files' common directory (`source_name`).
    doc_id: str
    lines: list[str]


@dataclasses.dataclass
class ReadStats:
    lines: int = 0
    lines_invalid_utf8: int = 0
    documents: int = 0


class TokenizedDocument(NamedTuple):
    """A document's WordPiece ids. Dimension legend: N tokens, S sentences."""

    doc_id: str
    token_ids: np.ndarray  # (N,) int32, the sentences one after the other.
    sentence_starts: np.ndarray  # (S + 1,) int64 offsets into token_ids; [-1] == N.
    word_starts: np.ndarray | None  # (N,) bool, True where a word begins (whole-word masking).

    @property
    def num_sentences(self) -> int:
        return len(self.sentence_starts) - 1


def decode_line(raw: bytes, stats: ReadStats) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        stats.lines_invalid_utf8 += 1
        return raw.decode("utf-8", errors="replace")


def split_documents(
    raw_lines: Iterable[bytes], source: str, stats: ReadStats
) -> Iterator[DocumentLines]:
    """Raw lines of one file -> its documents (stripped, non-blank lines), streaming.

    Args:
      raw_lines: the file's lines as bytes, line endings included or not.
      source: the file's path; document ids are `f"{source}:{index}"`.
      stats: incremented as lines and documents go by.
    """
    current: list[str] = []
    for raw in raw_lines:
        stats.lines += 1
        line = decode_line(raw, stats).strip()
        if line:
            current.append(line)
        elif current:
            yield DocumentLines(f"{source}:{stats.documents}", current)
            stats.documents += 1
            current = []
    if current:
        yield DocumentLines(f"{source}:{stats.documents}", current)
        stats.documents += 1


def _read_lines(path: str) -> Iterator[bytes]:
    # Beam's filesystems: local, gs:// (with apache-beam[gcp]), and .gz/.bz2 inputs by suffix.
    with FileSystems.open(path) as f:
        while True:
            line = f.readline()
            if not line:
                return
            yield line


def expand_input_patterns(input_file: str) -> list[str]:
    """`--input_file` (comma-separated files or globs) -> sorted paths.

    Raises ValueError naming each pattern that matches nothing, before any work starts.
    """
    patterns = [p.strip() for p in input_file.split(",") if p.strip()]
    if not patterns:
        raise ValueError("--input_file is empty.")
    paths: set[str] = set()
    for pattern, result in zip(patterns, FileSystems.match(patterns), strict=True):
        matched = [m.path for m in result.metadata_list]
        if not matched:
            raise ValueError(f"--input_file pattern {pattern!r} matches no file.")
        paths.update(matched)
    return sorted(paths)


def source_name(path: str, common_directory: str) -> str:
    """The name documents of `path` are known by: the path below `common_directory`.

    Document ids seed every random choice, so they must not depend on where the corpus
    lies: the same files read from a local folder or from `gs://` give the same records.
    """
    if common_directory and path.startswith(common_directory + "/"):
        return path[len(common_directory) + 1 :]
    return path


class CommonDirectoryFn(beam.CombineFn):
    """Paths -> their longest common directory ("" when they share none), any runner."""

    def create_accumulator(self) -> list[str] | None:
        return None  # None: no path seen yet.

    def add_input(self, accumulator: list[str] | None, path: str) -> list[str]:
        return self._common(accumulator, path.split("/")[:-1])

    def merge_accumulators(self, accumulators) -> list[str] | None:
        merged = None
        for accumulator in accumulators:
            if accumulator is not None:
                merged = self._common(merged, accumulator)
        return merged

    def extract_output(self, accumulator: list[str] | None) -> str:
        return "/".join(accumulator or [])

    @staticmethod
    def _common(a: list[str] | None, b: list[str]) -> list[str]:
        if a is None:
            return list(b)
        length = 0
        for x, y in zip(a, b, strict=False):
            if x != y:
                break
            length += 1
        return a[:length]


class ReadDocumentsFn(beam.DoFn):
    """path -> DocumentLines, streaming the file (memory: one document).

    `input_format="sentences"` is GB's layout; `documents` and `jsonl` give documents whose
    lines are paragraphs, split into sentences later (`pipeline.sentences`).
    """

    def __init__(
        self,
        input_format: str = "sentences",
        document_boundary: str = "line",
        jsonl_text_field: str = "text",
    ):
        self._input_format = input_format
        self._document_boundary = document_boundary
        self._jsonl_text_field = jsonl_text_field

    def process(self, path: str, common_directory: str = "") -> Iterator[DocumentLines]:
        source = source_name(path, common_directory)
        if self._input_format == "sentences":
            stats = ReadStats()
            yield from split_documents(_read_lines(path), source, stats)
        else:
            from pipeline.sentences import RawReadStats, read_raw_documents

            stats = RawReadStats()
            yield from read_raw_documents(
                _read_lines(path),
                path,
                stats,
                self._input_format,
                self._document_boundary,
                self._jsonl_text_field,
                name=source,
            )
            metrics.inc(metrics.LINES_INVALID_JSON, stats.lines_invalid_json)
            metrics.inc(metrics.RECORDS_WITHOUT_TEXT, stats.records_without_text)
        metrics.inc(metrics.FILES_READ)
        metrics.inc(metrics.LINES_READ, stats.lines)
        metrics.inc(metrics.LINES_INVALID_UTF8, stats.lines_invalid_utf8)
        metrics.inc(metrics.DOCUMENTS_READ, stats.documents)
        if stats.documents == 0:
            metrics.inc(metrics.FILES_WITHOUT_DOCUMENTS)


@dataclasses.dataclass
class TokenizeStats:
    sentences: int = 0
    sentences_without_tokens: int = 0
    documents_without_tokens: int = 0


# What a tokenizer call returns for a batch of lines (legend: P pieces, B lines):
# (piece ids (P,) int32, word starts (P,) bool or None, row splits (B + 1,) int64).
Encoded = tuple[np.ndarray, np.ndarray | None, np.ndarray]


def tokenize_documents(
    documents: Sequence[DocumentLines],
    encode: Callable[[list[str]], Encoded],
    stats: TokenizeStats,
    max_lines_per_call: int = MAX_LINES_PER_TOKENIZER_CALL,
) -> list[TokenizedDocument]:
    """Tokenizes a batch of documents with few tokenizer calls (all their lines at once).

    Works on the flat id arrays the tokenizer returns, never on per-token Python objects.
    Sentences without tokens and documents without sentences are dropped and counted.
    """
    lines = [line for document in documents for line in document.lines]
    flats, word_starts, lengths = [], [], []
    for begin in range(0, len(lines), max_lines_per_call):
        ids, starts, splits = encode(lines[begin : begin + max_lines_per_call])
        flats.append(ids)
        word_starts.append(starts)
        lengths.append(np.diff(splits))
    flat = np.concatenate(flats) if flats else np.zeros(0, np.int32)  # (P,)
    has_words = bool(word_starts) and word_starts[0] is not None
    flat_starts: np.ndarray | None = None  # (P,)
    if has_words:
        flat_starts = np.concatenate([w for w in word_starts if w is not None])
    line_lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)  # (B,)
    line_offsets = np.concatenate([[0], np.cumsum(line_lengths)])  # (B + 1,)
    tokenized = []
    line = 0
    for document in documents:
        count = len(document.lines)
        doc_lengths = line_lengths[line : line + count]
        begin, end = int(line_offsets[line]), int(line_offsets[line + count])
        line += count
        kept = doc_lengths[doc_lengths > 0]  # Lines without tokens add nothing to the span.
        stats.sentences_without_tokens += count - len(kept)
        if not len(kept):
            stats.documents_without_tokens += 1
            continue
        stats.sentences += len(kept)
        sentence_starts = np.concatenate([[0], np.cumsum(kept)]).astype(np.int64)  # (S + 1,)
        # Copies, so a document does not keep the whole batch's buffer alive.
        token_ids = flat[begin:end].astype(np.int32)  # (N,)
        starts = flat_starts[begin:end].copy() if flat_starts is not None else None
        tokenized.append(TokenizedDocument(document.doc_id, token_ids, sentence_starts, starts))
    return tokenized


class TokenizeDocumentsFn(beam.DoFn):
    """A batch of DocumentLines -> TokenizedDocuments; the tokenizer is loaded once per worker.

    The tokenizer runs eagerly on each batch: measured on the default corpus, the first call
    of its traced `encode_batch` took 11-13 s (tracing) against 1.1 s eagerly, and from 1,024
    lines a call the eager throughput is within 15% of the traced one. A worker's start-up
    then costs about a second instead of a dozen.
    """

    def __init__(self, vocab_file: str, do_lower_case: bool, do_whole_word_mask: bool):
        self._vocab_file = vocab_file
        self._do_lower_case = do_lower_case
        self._do_whole_word_mask = do_whole_word_mask
        self._tokenizer: Any = None  # A BertWordPieceTokenizer, made in setup().

    def setup(self):
        from bert_keras.tokenization import BertWordPieceTokenizer

        self._tokenizer = BertWordPieceTokenizer(self._vocab_file, lower_case=self._do_lower_case)

    def _encode(self, lines: list[str]) -> Encoded:
        import tensorflow as tf

        assert self._tokenizer is not None
        strings = tf.constant(lines, tf.string)
        if not self._do_whole_word_mask:
            ragged = self._tokenizer(strings)  # (B, (P))
            return ragged.flat_values.numpy(), None, ragged.row_splits.numpy()
        words = self._tokenizer.tokenize_words(strings)  # (B, (W), (P))
        ids = words.flat_values.numpy()
        piece_splits = words.values.row_splits.numpy()  # (W + 1,) word -> pieces
        starts = np.zeros(len(ids), bool)
        starts[piece_splits[:-1][np.diff(piece_splits) > 0]] = True
        return ids, starts, piece_splits[words.row_splits.numpy()]

    def process(self, batch: list[DocumentLines]) -> Iterator[TokenizedDocument]:
        stats = TokenizeStats()
        docs = tokenize_documents(batch, self._encode, stats)
        metrics.inc(metrics.SENTENCES, stats.sentences)
        metrics.inc(metrics.SENTENCES_WITHOUT_TOKENS, stats.sentences_without_tokens)
        metrics.inc(metrics.DOCUMENTS_SKIPPED_NO_TOKENS, stats.documents_without_tokens)
        metrics.inc(metrics.DOCUMENTS_TOKENIZED, len(docs))
        yield from docs


class SplitSentencesFn(beam.DoFn):
    """DocumentLines of paragraphs -> DocumentLines of sentences (pysbd, once per worker)."""

    def __init__(self, splitter: str = "pysbd"):
        self._splitter_name = splitter

    def setup(self):
        from pipeline.sentences import SentenceSplitter

        self._splitter = SentenceSplitter(self._splitter_name)

    def process(self, document: DocumentLines) -> Iterator[DocumentLines]:
        yield self._splitter.split_document(document)


class ReadTokenizedDocuments(beam.PTransform):
    """file paths -> TokenizedDocuments, spread over the workers.

    Reading streams one file per call; the Reshuffle after it moves documents off the
    reading worker (without it, a small input lands on one worker), and BatchElements
    makes each tokenizer call a batch of documents. Raw documents are split into sentences
    after the reshuffle, so that work is spread too.
    """

    def __init__(
        self,
        vocab_file: str,
        do_lower_case: bool,
        do_whole_word_mask: bool,
        input_format: str = "sentences",
        document_boundary: str = "line",
        jsonl_text_field: str = "text",
        sentence_splitter: str = "pysbd",
    ):
        super().__init__()
        self._sentence_splitter = sentence_splitter
        self._tokenize_fn = TokenizeDocumentsFn(vocab_file, do_lower_case, do_whole_word_mask)
        self._read_fn = ReadDocumentsFn(input_format, document_boundary, jsonl_text_field)
        self._split = input_format != "sentences"

    def expand(self, paths):
        common_directory = paths | "CommonDirectory" >> beam.CombineGlobally(CommonDirectoryFn())
        documents = (
            paths
            | "ReshuffleFiles" >> beam.Reshuffle()
            | "ReadDocuments"
            >> beam.ParDo(self._read_fn, beam.pvalue.AsSingleton(common_directory))
            | "ReshuffleDocuments" >> beam.Reshuffle()
        )
        if self._split:
            documents = documents | "SplitSentences" >> beam.ParDo(
                SplitSentencesFn(self._sentence_splitter)
            )
        return (
            documents
            | "BatchDocuments" >> beam.BatchElements(min_batch_size=32, max_batch_size=512)
            | "Tokenize" >> beam.ParDo(self._tokenize_fn)
        )

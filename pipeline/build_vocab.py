"""Learns a BERT WordPiece vocabulary: Beam word counting, then tensorflow-text's learner.

    python -m pipeline.build_vocab --input_file='corpus/*.txt' --output_file=vocab.txt \\
      --vocab_size=8000 [--do_lower_case] [Beam options, e.g. --runner=DirectRunner]

Words are counted by a Beam job (each batch of lines is normalised and split in one TF
call, counted locally, then summed per word across workers), so the corpus is never held
in one place. The normalisation and the word split are the tokenizer's own
(`bert_keras.tokenization`: google-research/bert's cleaning, CJK spacing and, with
`--do_lower_case`, lower-case + NFD + accent stripping, then splitting on whitespace and
punctuation), so the vocabulary's words are exactly what the tokenizer will look up.
`tensorflow_text.tools.wordpiece_vocab`'s learner then runs on the aggregated counts
(one (word, count) pair per distinct word). The output has `[PAD] [UNK] [CLS] [SEP]
[MASK]` first (ids 0-4), one token per line.
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Iterable, Iterator

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.documents import ReadStats, _read_lines, decode_line, expand_input_patterns
from pipeline.options import _add_bool


class ReadLinesFn(beam.DoFn):
    """path -> its non-blank lines (invalid UTF-8 replaced, as the pipeline does).

    With `input_format="jsonl"` the lines of each object's text field (bad JSON lines are
    skipped and logged with file:line, as in create_pretraining_data); `sentences` and
    `documents` are both plain text here, where only words are counted.
    """

    def __init__(self, input_format: str = "sentences", jsonl_text_field: str = "text"):
        self._input_format = input_format
        self._jsonl_text_field = jsonl_text_field

    def process(self, path: str) -> Iterator[str]:
        if self._input_format == "jsonl":
            from pipeline.sentences import RawReadStats, read_raw_documents

            raw_stats = RawReadStats()
            for document in read_raw_documents(
                _read_lines(path), path, raw_stats, "jsonl", text_field=self._jsonl_text_field
            ):
                yield from document.lines
            return
        stats = ReadStats()
        for raw in _read_lines(path):
            line = decode_line(raw, stats).strip()
            if line:
                yield line


class CountWordsFn(beam.DoFn):
    """A batch of lines -> (word, count) pairs of that batch (one TF call per batch)."""

    def __init__(self, do_lower_case: bool):
        self._do_lower_case = do_lower_case

    def _split(self, lines: list[str]):
        """(B,) lines -> (words,) bytes: the tokenizer's normalisation and word split.

        Eager, like the pipeline's tokenization (see `pipeline.documents` for the
        measurement): a tf.function's first call (tracing) costs seconds per worker, while
        on batches of hundreds of lines eager calls cost about the same as traced ones.
        """
        import tensorflow as tf
        import tensorflow_text as tf_text

        from bert_keras import tokenization

        normalized = tokenization.normalize_text(tf.constant(lines, tf.string), self._do_lower_case)
        # The tokenizer's own split patterns (module level), so counted words are the words
        # BertWordPieceTokenizer looks up.
        words = tf_text.regex_split(
            normalized, tokenization._SPLIT_PATTERN, tokenization._KEEP_PATTERN
        )
        return words.flat_values.numpy()

    def process(self, lines: list[str]) -> Iterator[tuple[str, int]]:
        counts = collections.Counter(self._split(lines).tolist())
        for word, count in counts.items():
            yield word.decode("utf-8"), count


def learn_vocab(word_counts: Iterable[tuple[str, int]], vocab_size: int) -> list[str]:
    """tensorflow-text's WordPiece learner; reserved tokens first."""
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

    from bert_keras.tokenization import RESERVED_TOKENS

    # Sorted so the learner sees the same input order on every runner.
    counts = sorted(word_counts, key=lambda wc: (-wc[1], wc[0]))
    vocab = learner.learn(counts, vocab_size, list(RESERVED_TOKENS))
    if list(vocab[: len(RESERVED_TOKENS)]) != list(RESERVED_TOKENS):
        vocab = list(RESERVED_TOKENS) + [t for t in vocab if t not in RESERVED_TOKENS]
    return list(vocab)


def write_vocab(vocab: list[str], output_file: str) -> None:
    import tensorflow as tf

    with tf.io.gfile.GFile(output_file, "w") as f:
        f.write("".join(token + "\n" for token in vocab))


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input_file", required=True, help="Comma-separated files or globs.")
    parser.add_argument("--output_file", required=True, help="The vocab file to write.")
    parser.add_argument("--vocab_size", type=int, default=30522, help="At most this many tokens.")
    _add_bool(parser, "do_lower_case", True, "Lower-case, NFD and strip accents (uncased).")
    parser.add_argument(
        "--lines_per_batch", type=int, default=512, help="Lines per tokenizer-normaliser call."
    )
    parser.add_argument(
        "--input_format",
        default="sentences",
        choices=("sentences", "documents", "jsonl"),
        help="As create_pretraining_data's; jsonl counts the words of --jsonl_text_field.",
    )
    parser.add_argument("--jsonl_text_field", default="text")
    args, beam_args = parser.parse_known_args(argv)
    if args.vocab_size < 10:
        parser.error("--vocab_size must be >= 10.")
    return args, beam_args


def run(argv: list[str] | None = None) -> list[str]:
    args, beam_args = parse_args(argv)
    paths = expand_input_patterns(args.input_file)
    with beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline:
        _ = (
            pipeline
            | "InputFiles" >> beam.Create(paths)
            | "ReshuffleFiles" >> beam.Reshuffle()
            | "ReadLines" >> beam.ParDo(ReadLinesFn(args.input_format, args.jsonl_text_field))
            | "ReshuffleLines" >> beam.Reshuffle()
            | "BatchLines"
            >> beam.BatchElements(
                min_batch_size=args.lines_per_batch, max_batch_size=args.lines_per_batch
            )
            | "CountWordsInBatch" >> beam.ParDo(CountWordsFn(args.do_lower_case))
            | "SumCounts" >> beam.CombinePerKey(sum)
            | "AllCounts" >> beam.combiners.ToList()
            | "Learn"
            >> beam.Map(
                lambda counts: write_vocab(learn_vocab(counts, args.vocab_size), args.output_file)
            )
        )
    from bert_keras.tokenization import load_vocab

    vocab = load_vocab(args.output_file)
    print(f"Wrote {args.output_file}: {len(vocab)} tokens.")
    return vocab


def cli() -> None:
    try:
        run(sys.argv[1:])
    except ValueError as e:
        sys.exit(f"build_vocab: error: {e}")


if __name__ == "__main__":
    cli()

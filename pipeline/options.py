"""Flags of `create_pretraining_data`: google-research/bert's (GB) names and defaults.

The application flags are parsed first (`parse_known_args`, as in Beam's wordcount); every
other argument is handed to Beam's `PipelineOptions` unchanged, so `--runner`,
`--project`, `--region`, `--temp_location`, `--direct_num_workers` and
`--direct_running_mode` work as Beam documents them. Boolean flags accept absl's
spellings (`--do_lower_case`, `--do_lower_case=false`, `--nodo_lower_case`), because GB's
commands are written that way.
"""

from __future__ import annotations

import argparse
import dataclasses

COMPRESSION_CHOICES = ("NONE", "GZIP")
OBJECTIVE_CHOICES = ("bert", "roberta")
PACKING_CHOICES = ("full_sentences", "doc_sentences")
MASKING_CHOICES = ("static", "dynamic")
INPUT_FORMAT_CHOICES = ("sentences", "documents", "jsonl")
DOCUMENT_BOUNDARY_CHOICES = ("line", "blank_line")


@dataclasses.dataclass(frozen=True)
class PretrainingDataOptions:
    """Everything the pipeline needs besides Beam's own options."""

    input_file: str
    output_file: str
    vocab_file: str
    do_lower_case: bool = True
    do_whole_word_mask: bool = False
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    random_seed: int = 12345
    dupe_factor: int = 10
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    num_shards: int = 8
    compression: str = "NONE"
    documents_per_bucket: int = 256
    # RoBERTa formats (Liu et al. 2019, Table 2). `objective="roberta"` writes no NSP:
    # `[CLS] tokens [SEP]` with segment ids 0, packed by `packing` (see `pipeline.packing`).
    objective: str = "bert"
    packing: str = "full_sentences"  # Only read with objective="roberta".
    masking: str = "static"  # "dynamic": no masked_lm_* features; the trainer masks.
    report: bool = True  # pipeline.report on the shards at the end of the run.
    # Raw input (see pipeline.sentences): sentences is GB's one-sentence-a-line layout.
    input_format: str = "sentences"
    document_boundary: str = "line"  # input_format=documents: a line, or a blank-line block.
    jsonl_text_field: str = "text"
    sentence_splitter: str = "pysbd"  # Or "regex": faster, less exact (pipeline.sentences).
    # Several output sets from one read of the corpus (GB's two-phase 128/512 recipe):
    # ((max_seq_length, max_predictions_per_seq), ...), shards `PREFIX-len<L>-...`. Empty:
    # one set, `max_seq_length`/`max_predictions_per_seq`, shards `PREFIX-...` (GB's names).
    lengths: tuple[tuple[int, int], ...] = ()
    max_ngram_size: int = 1  # > 1: n-gram masking, p(n) proportional to 1/n (pipeline.masking).
    # Length bins: ascending upper bounds; each instance goes to the set of the smallest
    # bound >= its unpadded length (else the full-length set), padded to that bound.
    # Empty: no bins. See `bins_for`.
    length_bins: tuple[int, ...] = ()

    def per_length(self) -> list[PretrainingDataOptions]:
        """One options object per output set (itself when there is one set)."""
        if not self.lengths:
            return [self]
        return [
            dataclasses.replace(
                self,
                max_seq_length=length,
                max_predictions_per_seq=preds,
                lengths=(),
                length_bins=tuple(b for b in self.length_bins if b < length),
            )
            for length, preds in self.lengths
        ]

    def bins_for(self, max_seq_length: int) -> tuple[int, ...]:
        """The record lengths of one length set: the bounds below `max_seq_length`, then
        `max_seq_length` itself (the set of everything longer than the last bound). Bounds
        >= `max_seq_length` are ignored (they can only be given with several lengths; see
        `__post_init__`). `()` without --length_bins."""
        if not self.length_bins:
            return ()
        return tuple(b for b in self.length_bins if b < max_seq_length) + (max_seq_length,)

    @property
    def has_next_sentence(self) -> bool:
        return self.objective == "bert"

    @property
    def has_masked_lm(self) -> bool:
        return self.masking == "static"

    @property
    def num_passes(self) -> int:
        """Dupe passes made: RoBERTa packing draws nothing at random, so with dynamic masking
        every pass would be a byte-identical copy; one is written (the trainer re-masks per
        epoch instead)."""
        if self.objective == "roberta" and self.masking == "dynamic":
            return 1
        return self.dupe_factor

    def __post_init__(self):
        checks = [
            (self.max_seq_length >= 5, "--max_seq_length must be >= 5 ([CLS] A [SEP] B [SEP])"),
            (self.max_predictions_per_seq >= 1, "--max_predictions_per_seq must be >= 1"),
            (self.dupe_factor >= 1, "--dupe_factor must be >= 1"),
            (0.0 < self.masked_lm_prob <= 1.0, "--masked_lm_prob must be in (0, 1]"),
            (0.0 <= self.short_seq_prob <= 1.0, "--short_seq_prob must be in [0, 1]"),
            (self.num_shards >= 0, "--num_shards must be >= 0 (0: the runner decides)"),
            (self.documents_per_bucket >= 2, "--documents_per_bucket must be >= 2"),
            (
                self.compression in COMPRESSION_CHOICES,
                f"--compression must be one of {COMPRESSION_CHOICES}",
            ),
            (
                self.objective in OBJECTIVE_CHOICES,
                f"--objective must be one of {OBJECTIVE_CHOICES}",
            ),
            (self.packing in PACKING_CHOICES, f"--packing must be one of {PACKING_CHOICES}"),
            (self.masking in MASKING_CHOICES, f"--masking must be one of {MASKING_CHOICES}"),
            (
                self.input_format in INPUT_FORMAT_CHOICES,
                f"--input_format must be one of {INPUT_FORMAT_CHOICES}",
            ),
            (
                self.document_boundary in DOCUMENT_BOUNDARY_CHOICES,
                f"--document_boundary must be one of {DOCUMENT_BOUNDARY_CHOICES}",
            ),
            (bool(self.jsonl_text_field), "--jsonl_text_field must not be empty"),
            (self.max_ngram_size >= 1, "--max_ngram_size must be >= 1"),
            (
                self.sentence_splitter in ("pysbd", "regex"),
                "--sentence_splitter must be pysbd or regex",
            ),
        ]
        lengths = [length for length, _ in self.lengths]
        checks += [
            (min(lengths, default=5) >= 5, "--max_seq_length values must be >= 5"),
            (min((p for _, p in self.lengths), default=1) >= 1, "--max_predictions_per_seq >= 1"),
            (len(set(lengths)) == len(lengths), "--max_seq_length values must be distinct"),
        ]
        bins = self.length_bins
        longest = max(lengths, default=self.max_seq_length)
        checks += [
            (min(bins, default=5) >= 5, "--length_bins bounds must be >= 5 (as --max_seq_length)"),
            (
                all(a < b for a, b in zip(bins, bins[1:], strict=False)),
                f"--length_bins must be strictly ascending, got {list(bins)}",
            ),
            (
                max(bins, default=0) < longest,
                f"--length_bins bounds must be < --max_seq_length ({longest}, the longest), "
                f"got {list(bins)}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        for name in ("input_file", "output_file", "vocab_file"):
            if not getattr(self, name):
                raise ValueError(f"--{name} is required.")


def _parse_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "t", "1", "yes"):
        return True
    if lowered in ("false", "f", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _int_list(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas: {e}") from e


def _add_bool(parser: argparse.ArgumentParser, name: str, default: bool, help_text: str) -> None:
    parser.add_argument(
        f"--{name}", type=_parse_bool, nargs="?", const=True, default=default, help=help_text
    )
    parser.add_argument(f"--no{name}", dest=name, action="store_false", help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Creates masked-LM / next-sentence TFRecords for BERT with Apache Beam.",
        epilog="Every other argument goes to Beam's PipelineOptions (e.g. --runner).",
    )
    parser.add_argument(
        "--input_file", required=True, help="Input text: comma-separated files or globs."
    )
    parser.add_argument(
        "--output_file",
        required=True,
        help="Output path prefix: shards PREFIX-00000-of-0000N.tfrecord[.gz].",
    )
    parser.add_argument("--vocab_file", required=True, help="The BERT vocab file.")
    _add_bool(parser, "do_lower_case", True, "Lower-case, NFD and strip accents (uncased).")
    _add_bool(parser, "do_whole_word_mask", False, "Mask whole words, not single pieces.")
    parser.add_argument(
        "--max_seq_length",
        type=_int_list,
        default=(128,),
        help="One length, or several (128,512): one set of shards per length, PREFIX-len128-...",
    )
    parser.add_argument(
        "--max_predictions_per_seq",
        type=_int_list,
        default=(20,),
        help="One value per --max_seq_length (20,80).",
    )
    parser.add_argument("--random_seed", type=int, default=12345)
    parser.add_argument(
        "--dupe_factor", type=int, default=10, help="Passes over the data, masked differently."
    )
    parser.add_argument("--masked_lm_prob", type=float, default=0.15)
    parser.add_argument(
        "--short_seq_prob",
        type=float,
        default=0.1,
        help="Probability of a target length shorter than max_seq_length.",
    )
    parser.add_argument(
        "--num_shards",
        type=int,
        default=8,
        help="Output shards of each set (each --max_seq_length, each --length_bins bin), "
        "each holding the records whose hash falls on it (written in two phases through "
        "per-bundle temporary files: no step gathers the records); 0 lets the runner decide "
        "(Beam's WriteToTFRecord, one file per bundle).",
    )
    parser.add_argument(
        "--compression", default="NONE", type=str.upper, choices=COMPRESSION_CHOICES
    )
    parser.add_argument(
        "--documents_per_bucket",
        type=int,
        default=256,
        help="Documents grouped together to draw random-next segments from; bounds a "
        "worker's memory.",
    )
    parser.add_argument(
        "--objective",
        default="bert",
        choices=OBJECTIVE_CHOICES,
        help="bert: [CLS] A [SEP] B [SEP] with next-sentence labels (GB); roberta: "
        "[CLS] tokens [SEP], segment ids 0, no next_sentence_labels.",
    )
    parser.add_argument(
        "--packing",
        default="full_sentences",
        choices=PACKING_CHOICES,
        help="With --objective=roberta: full_sentences packs contiguous sentences up to "
        "max_seq_length, crossing document boundaries with an extra [SEP] (documents of a "
        "bucket in a seeded order); doc_sentences does not cross documents.",
    )
    parser.add_argument(
        "--masking",
        default="static",
        choices=MASKING_CHOICES,
        help="static: masked_lm_* features written (GB); dynamic: records without them, "
        "the trainer masks every epoch anew (with roberta, one dupe pass is written).",
    )
    _add_bool(
        parser,
        "report",
        True,
        "At the end, read the shards back and write PREFIX.report.json and PNG histograms "
        "(pipeline.report).",
    )
    parser.add_argument(
        "--input_format",
        default="sentences",
        choices=INPUT_FORMAT_CHOICES,
        help="sentences: one sentence a line, blank line between documents (GB); "
        "documents: raw text split into sentences by the pipeline (pysbd); jsonl: one JSON "
        "object a line, the text in --jsonl_text_field.",
    )
    parser.add_argument(
        "--document_boundary",
        default="line",
        choices=DOCUMENT_BOUNDARY_CHOICES,
        help="With --input_format=documents: one document a line, or a block of lines "
        "between blank lines.",
    )
    parser.add_argument("--jsonl_text_field", default="text")
    parser.add_argument(
        "--sentence_splitter",
        default="pysbd",
        choices=("pysbd", "regex"),
        help="Raw input: pysbd (exact, ~0.1-0.2 M chars/s a core) or regex (~80 M chars/s, "
        "cuts after 'e.g.' before a capital).",
    )
    parser.add_argument(
        "--max_ngram_size",
        type=int,
        default=1,
        help="Mask spans of up to N units (words with --do_whole_word_mask, else pieces), "
        "p(n) proportional to 1/n; the 80/10/10 choice is made per span. 1: GB's masking.",
    )
    parser.add_argument(
        "--length_bins",
        type=_int_list,
        default=(),
        help="Ascending upper bounds (64,96), each < --max_seq_length: every instance is "
        "written, padded to the smallest bound >= its length, into that bin's set "
        "PREFIX-bin064-... (the rest, padded to max_seq_length, into PREFIX-bin128-...); with "
        "several --max_seq_length values PREFIX-len128-bin064-..., and bounds >= a set's "
        "length are ignored for that set. The instances and masks are the same as without "
        "bins; only the padding differs. Each bin's set has --num_shards shards and its own "
        "summary and report. The trainer reads all bins with one --input_file glob.",
    )
    return parser


def parse_args(argv: list[str] | None) -> tuple[PretrainingDataOptions, list[str]]:
    """argv (without the program name) -> (our options, the arguments left for Beam)."""
    known, beam_args = build_parser().parse_known_args(argv)
    values = vars(known)
    lengths, predictions = values.pop("max_seq_length"), values.pop("max_predictions_per_seq")
    if not lengths or len(predictions) != len(lengths):
        raise ValueError(
            f"--max_predictions_per_seq needs one value per --max_seq_length: got "
            f"{len(lengths)} length(s) {list(lengths)} and {len(predictions)} value(s) "
            f"{list(predictions)}."
        )
    pairs = tuple(zip(lengths, predictions, strict=True))
    return (
        PretrainingDataOptions(
            **values,
            max_seq_length=lengths[0],
            max_predictions_per_seq=predictions[0],
            lengths=pairs if len(pairs) > 1 else (),
        ),
        beam_args,
    )

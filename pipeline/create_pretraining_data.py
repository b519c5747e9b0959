"""Creates BERT pretraining TFRecords (masked LM + next sentence) with Apache Beam.

    python -m pipeline.create_pretraining_data \\
      --input_file='corpus/*.txt' --output_file=out/pretrain --vocab_file=vocab.txt \\
      --runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing

google-research/bert's (GB) flags, defaults, algorithm and record schema (see
`pipeline.options`, `pipeline.instances`, `pipeline.masking`, `bert_keras.records`);
every other argument is a Beam pipeline option. The steps:

  input paths -> read documents (streamed per file) -> reshuffle -> batches of documents
  -> tokenize (one TF call per batch) -> key by seeded-hash bucket -> group
  -> per bucket: pair and truncate per document, mask and serialize ~1,024 instances at a
     time (`pipeline.encoding`) -> lists of records -> TFRecord shards (`pipeline.writer`).

Beyond GB: `--objective=roberta` (`--packing=full_sentences|doc_sentences`, no NSP;
`pipeline.packing`), `--masking=dynamic` (records without masked-LM features),
`--input_format=documents|jsonl` (raw text split into sentences; `pipeline.sentences`),
`--max_seq_length=128,512` with `--max_predictions_per_seq=20,80` (one tokenization, one set
of shards `PREFIX-len<L>-...` per length), `--length_bins=64,96` (the same instances, each
padded only to the smallest bin that holds it: `PREFIX-bin064-...`, ..., `PREFIX-bin128-...`,
so the trainer pads less), `--max_ngram_size` (`pipeline.masking`), and a dataset report
beside the shards (`pipeline.report`; `--noreport` skips it).

Memory is bounded by a bucket of documents, never the corpus; the output set is the same on
any runner and worker count. Beam counters count documents read/skipped, sentences,
instances, tokens and masked tokens; a summary is printed at the end (and written beside the
shards as `PREFIX.summary.json` when the runner reports counters).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys

import apache_beam as beam
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import metrics
from pipeline.buckets import CreateInstances, bin_suffix
from pipeline.documents import ReadTokenizedDocuments, expand_input_patterns
from pipeline.options import PretrainingDataOptions, parse_args
from pipeline.writer import WriteShards


def check_inputs(options: PretrainingDataOptions) -> list[str]:
    """Fails early, naming the flag, on an unmatched glob or a bad vocab file."""
    from bert_keras.tokenization import load_vocab

    paths = expand_input_patterns(options.input_file)
    load_vocab(options.vocab_file)  # ValueError naming the file when missing or malformed.
    return paths


def output_sets(options: PretrainingDataOptions) -> list[tuple[str, str, PretrainingDataOptions]]:
    """(counter suffix, shard prefix, options) of each output set: one, or one per length,
    and with --length_bins one per bin of each (its options' max_seq_length is the bin's
    record length)."""
    sets = []
    for length_options in options.per_length():
        length = length_options.max_seq_length
        suffix, prefix = "", options.output_file
        if options.lengths:
            suffix, prefix = f"/len{length}", f"{prefix}-len{length}"
        bins = options.bins_for(length)
        if not bins:
            sets.append((suffix, prefix, length_options))
            continue
        for bound in bins:
            name = bin_suffix(bound)
            sets.append(
                (
                    f"{suffix}/{name}",
                    f"{prefix}-{name}",
                    dataclasses.replace(length_options, max_seq_length=bound, length_bins=()),
                )
            )
    return sets


def build_pipeline(pipeline: beam.Pipeline, options: PretrainingDataOptions, paths: list[str]):
    """Adds the whole job to `pipeline`; returns the write result(s).

    With several `--max_seq_length` values the tokenized documents are read once and branch
    into one CreateInstances + WriteShards per length. With `--length_bins`, each
    CreateInstances has one output per bin (tagged outputs of the same DoFn: the instances
    are made once), each written by its own WriteShards.
    """
    documents = (
        pipeline
        | "InputFiles" >> beam.Create(paths)
        | "Documents"
        >> ReadTokenizedDocuments(
            options.vocab_file,
            options.do_lower_case,
            options.do_whole_word_mask,
            options.input_format,
            options.document_boundary,
            options.jsonl_text_field,
            options.sentence_splitter,
        )
    )
    if not options.lengths and not options.length_bins:
        return (
            documents
            | "Instances" >> CreateInstances(options)
            | "Write"
            >> WriteShards(
                options.output_file, options.num_shards, options.compression, record_lists=True
            )
        )
    writes = []
    for length_options in options.per_length():
        length = length_options.max_seq_length
        suffix = f"/len{length}" if options.lengths else ""
        prefix = f"{options.output_file}-len{length}" if options.lengths else options.output_file
        tag = suffix.lstrip("/")
        label = f"-{tag}" if tag else ""
        bins = options.bins_for(length)
        if not bins:
            writes.append(
                documents
                | f"Instances{label}" >> CreateInstances(length_options, suffix)
                | f"Write{label}"
                >> WriteShards(prefix, options.num_shards, options.compression, record_lists=True)
            )
            continue
        per_bin = documents | f"Instances{label}" >> CreateInstances(length_options, suffix, bins)
        for bound in bins:
            name = bin_suffix(bound)
            writes.append(
                per_bin[bound]
                | f"Write{label}-{name}"
                >> WriteShards(
                    f"{prefix}-{name}", options.num_shards, options.compression, record_lists=True
                )
            )
    return writes


def counters_of_set(counters: dict[str, int], suffix: str) -> dict[str, int]:
    """The counters of one output set: its own where counted per set (a length bin's
    `/len128/bin064`, else its length's `/len128`), else the shared ones."""
    if not suffix:
        return counters
    parts = suffix.split("/")[1:]
    suffixes = ["/" + "/".join(parts[:n]) for n in range(len(parts), 0, -1)]
    values = {}
    for name, value in counters.items():
        if "/" in name:
            continue
        values[name] = next((counters[name + s] for s in suffixes if name + s in counters), value)
    return values


def write_run_report(options: PretrainingDataOptions, prefix: str) -> None:
    """`pipeline.report` on the shards `prefix-*`, written beside them (`prefix.report.json`)."""
    from pipeline import report

    files = sorted(tf.io.gfile.glob(prefix + "-[0-9]*-of-*.tfrecord*"))
    if not files:
        logging.warning("No records under %s-*: no report.", prefix)
        return
    result = report.build_report(files, options.vocab_file)
    directory, name = os.path.split(prefix)
    report.write_report(result, directory or ".", name + ".")
    print(report.format_report(result))


def run(argv: list[str] | None = None) -> dict[str, int]:
    """Runs the job; returns our counters (zeros where the runner reports none)."""
    from bert_keras.tokenization import MASK_TOKEN, UNK_TOKEN, load_vocab

    options, beam_args = parse_args(argv)
    paths = check_inputs(options)
    vocab = load_vocab(options.vocab_file)
    pipeline_options = PipelineOptions(beam_args)
    with beam.Pipeline(options=pipeline_options) as pipeline:
        build_pipeline(pipeline, options, paths)
    result = pipeline.result  # Set when the `with` block ran the pipeline to completion.
    counters = metrics.query_counters(result)
    for suffix, prefix, set_options in output_sets(options):
        set_counters = counters_of_set(counters, suffix)
        if suffix:
            print(f"--- {prefix}: max_seq_length={set_options.max_seq_length}")
        print(metrics.format_summary(set_counters, options.has_next_sentence))
        summary_path = prefix + ".summary.json"
        try:
            with tf.io.gfile.GFile(summary_path, "w") as f:
                json.dump(
                    {
                        "summary": metrics.summarize(set_counters, options.has_next_sentence),
                        "counters": set_counters,
                        "vocab_file": options.vocab_file,
                        "unk_id": vocab.index(UNK_TOKEN),
                        "mask_id": vocab.index(MASK_TOKEN),
                    },
                    f,
                    indent=2,
                )
        except (OSError, tf.errors.OpError) as e:  # The records are written; this is extra.
            logging.warning("Could not write %s: %s", summary_path, e)
        logging.info("Wrote %s-*", prefix)
        if options.report:
            try:
                write_run_report(set_options, prefix)
            except (OSError, ValueError, tf.errors.OpError) as e:  # The records are written.
                logging.warning("Could not write the report of %s: %s", prefix, e)
    return counters


def cli() -> None:
    try:
        run(sys.argv[1:])
    except ValueError as e:
        sys.exit(f"create_pretraining_data: error: {e}")


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    cli()

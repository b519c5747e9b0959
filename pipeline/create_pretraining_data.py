"""Creates BERT pretraining TFRecords (masked LM + next sentence) with Apache Beam.

    python -m pipeline.create_pretraining_data \\
      --input_file='corpus/*.txt' --output_file=out/pretrain --vocab_file=vocab.txt \\
      --runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing

google-research/bert's (GB) flags, defaults, algorithm and record schema (see
`pipeline.options`, `pipeline.instances`, `pipeline.masking`, `bert_keras.records`);
every other argument is a Beam pipeline option. The steps:

  input paths -> read documents (streamed per file) -> reshuffle -> batches of documents
  -> tokenize (one TF call per batch) -> key by seeded-hash bucket -> group
  -> pair, truncate, mask, serialize per bucket -> WriteToTFRecord shards.

Memory is bounded by a bucket of documents, never the corpus; the output set is the same on
any runner and worker count. Beam counters count documents read/skipped, sentences,
instances, tokens and masked tokens; a summary is printed at the end (and written beside the
shards as `PREFIX.summary.json` when the runner reports counters).
"""

from __future__ import annotations

import json
import logging
import os
import sys

import apache_beam as beam
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import metrics
from pipeline.buckets import CreateInstances
from pipeline.documents import ReadTokenizedDocuments, expand_input_patterns
from pipeline.options import PretrainingDataOptions, parse_args
from pipeline.writer import WriteShards


def check_inputs(options: PretrainingDataOptions) -> list[str]:
    """Fails early, naming the flag, on an unmatched glob or a bad vocab file."""
    from bert_keras.tokenization import load_vocab

    paths = expand_input_patterns(options.input_file)
    load_vocab(options.vocab_file)  # ValueError naming the file when missing or malformed.
    return paths


def build_pipeline(pipeline: beam.Pipeline, options: PretrainingDataOptions, paths: list[str]):
    """Adds the whole job to `pipeline`; returns the write result."""
    return (
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
        )
        | "Instances" >> CreateInstances(options)
        | "Write" >> WriteShards(options.output_file, options.num_shards, options.compression)
    )


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
    print(metrics.format_summary(counters, options.has_next_sentence))
    summary_path = options.output_file + ".summary.json"
    try:
        with tf.io.gfile.GFile(summary_path, "w") as f:
            json.dump(
                {
                    "summary": metrics.summarize(counters, options.has_next_sentence),
                    "counters": counters,
                    "vocab_file": options.vocab_file,
                    "unk_id": vocab.index(UNK_TOKEN),
                    "mask_id": vocab.index(MASK_TOKEN),
                },
                f,
                indent=2,
            )
    except (OSError, tf.errors.OpError) as e:  # The records are written; the summary is extra.
        logging.warning("Could not write %s: %s", summary_path, e)
    logging.info("Wrote %s-*", options.output_file)
    if options.report:
        try:
            write_run_report(options, options.output_file)
        except (OSError, ValueError, tf.errors.OpError) as e:  # The records are written.
            logging.warning("Could not write the report of %s: %s", options.output_file, e)
    return counters


def cli() -> None:
    try:
        run(sys.argv[1:])
    except ValueError as e:
        sys.exit(f"create_pretraining_data: error: {e}")


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    cli()

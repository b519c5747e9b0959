"""The data pipeline end to end on the default corpus (the Makefile's `demo` target).

    python -m pipeline.demo --output_dir=out/demo

1. `pipeline.sample_corpus`: the Python standard library's docstrings -> corpus.txt;
2. `pipeline.build_vocab`: a Beam word count + tensorflow-text's WordPiece learner -> vocab.txt;
3. `pipeline.create_pretraining_data` with two worker processes -> pretrain-*.tfrecord;
   (it prints the summary: documents, sentences, instances, tokens, masked fraction,
   label-1 share);
4. reads the records back through `bert_keras.records.make_dataset`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from pipeline import build_vocab, create_pretraining_data, sample_corpus

IN_PROCESS = ["--runner=DirectRunner"]
TWO_WORKERS = [
    "--runner=DirectRunner",
    "--direct_running_mode=multi_processing",
    "--direct_num_workers=2",
]


def run(argv: list[str] | None = None) -> dict[str, int]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default="out/demo")
    parser.add_argument("--vocab_size", type=int, default=8000)
    parser.add_argument("--dupe_factor", type=int, default=3)
    args = parser.parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    corpus = os.path.join(args.output_dir, "corpus.txt")
    vocab = os.path.join(args.output_dir, "vocab.txt")
    prefix = os.path.join(args.output_dir, "pretrain")

    def step(title: str) -> float:
        print(f"\n== {title}", flush=True)
        return time.perf_counter()

    start = step("1/4 sample corpus")
    sample_corpus.run([f"--output_file={corpus}"])
    print(f"   {time.perf_counter() - start:.1f}s")

    start = step("2/4 build_vocab (Beam word count + WordPiece learner)")
    build_vocab.run(
        [f"--input_file={corpus}", f"--output_file={vocab}", f"--vocab_size={args.vocab_size}"]
        + IN_PROCESS
    )
    print(f"   {time.perf_counter() - start:.1f}s")

    start = step("3/4 create_pretraining_data (2 worker processes)")
    counters = create_pretraining_data.run(
        [
            f"--input_file={corpus}",
            f"--output_file={prefix}",
            f"--vocab_file={vocab}",
            f"--dupe_factor={args.dupe_factor}",
        ]
        + TWO_WORKERS
    )
    print(f"   {time.perf_counter() - start:.1f}s")

    step("4/4 read back")
    from bert_keras import records

    spec = records.RecordSpec()
    dataset = records.make_dataset(prefix + "-*", spec, batch_size=256, shuffle=False, repeat=False)
    count = sum(int(batch[records.INPUT_IDS].shape[0]) for batch in dataset)
    print(f"   {count} records readable through bert_keras.records.make_dataset")
    if count != counters["instances"]:
        sys.exit(f"demo: error: {count} records read, {counters['instances']} written.")
    return counters


def cli() -> None:
    run(sys.argv[1:])


if __name__ == "__main__":
    cli()

"""Pretraining-data throughput and peak memory: our Beam pipeline vs google-research/bert.

    python benchmarks/pipeline_throughput.py --work_dir=/tmp/pipeline_bench \\
        --reference_dir=/path/to/google-research/bert [--repeat=10] [--dupe_factor=5]

Corpora: the default corpus (`pipeline.sample_corpus`) and the same corpus repeated
`--repeat` times (its documents get new ids, so the copies are masked and paired anew).
One vocab (`pipeline.build_vocab`, or `--vocab_file`) for every run.

Runs, each in a fresh process whose whole process tree is sampled for RSS every 50 ms:
- ours with 1 worker (`--direct_num_workers=1`, in-process) and with 2 worker processes
  (`--direct_running_mode=multi_processing --direct_num_workers=2`);
- google-research/bert's `create_pretraining_data.py` (one process, the reference) from
  `--reference_dir` (a checkout holding its `create_pretraining_data.py` and
  `tokenization.py`). It is TF1 code (`tf.flags`, `tf.gfile`, `tf.python_io`): it runs with
  `tensorflow.compat.v1` installed as its `tensorflow` module, nothing else changed.

Modes (`--modes`, ours only): `bert` (GB's format, the default), `roberta_full`
(`--objective=roberta --packing=full_sentences`, static masking), `roberta_dynamic`
(full_sentences, `--masking=dynamic`: one pass, no masking) and `documents` (the same
corpus as raw text, one document a line, `--input_format=documents`: sentences split by
pysbd in the pipeline). Runs pass `--noreport` (the report reads the records back after the
job; it is timed apart, `--time_report`). `--splitters` times the sentence splitters
compared in `pipeline/sentences.py` on standard-library docstrings and exits.

Printed: instances, wall seconds (process start to exit, start-up included), instances/s,
instances/s per core used, CPU seconds of the whole process tree and instances per
CPU-second (the per-core speed, which a loaded machine distorts far less than wall time),
and peak RSS summed over the process tree; then the marginal instances per extra
CPU-second from the smallest corpus to the larger (start-up taken out: the steady-state
speed on a large corpus). Nothing is asserted. On a shared machine the wall-time figures
move with the load; the table prints the load average. This machine's speed itself drifts
10-20% over minutes: `--rounds=3` runs everything three times, interleaved, and prints
medians with the CPU-second range.
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

GB_LAUNCHER = """
import runpy, sys
import tensorflow as tf
sys.modules["tensorflow"] = tf.compat.v1  # GB's script is TF1: tf.flags, tf.gfile, tf.python_io.
sys.path.insert(0, {ref!r})
sys.argv = [{script!r}] + {argv!r}
runpy.run_path({script!r}, run_name="__main__")
"""


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _tree_usage(pid: int, cpu_ticks: dict[int, int]) -> int:
    """RSS bytes of the process tree under `pid`; records each process's CPU ticks so far."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu_ticks[p] = int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            continue
        stack.extend(_children(p))
    return total


def measure(command: list[str], log_path: str) -> tuple[float, int, float]:
    """Runs `command`; returns (wall seconds, peak RSS of its process tree in bytes, CPU
    seconds of the tree).

    CPU seconds make runs comparable on a loaded machine, where wall time mostly measures
    the wait for a core: the larger of the OS's account of reaped children and the sum of
    each process's last sampled CPU time (workers that are not reaped by their parent).
    """
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_ticks: dict[int, int] = {}
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        peak = 0
        while process.poll() is None:
            peak = max(peak, _tree_usage(process.pid, cpu_ticks))
            time.sleep(0.05)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    sampled = sum(cpu_ticks.values()) / os.sysconf("SC_CLK_TCK")
    if process.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed ({process.returncode}); see {log_path}")
    return wall, peak, max(reaped, sampled)


def count_records(paths: list[str]) -> int:
    import tensorflow as tf

    return sum(1 for path in paths for _ in tf.data.TFRecordDataset(path))


def prepare(args) -> tuple[dict[str, str], str]:
    os.makedirs(args.work_dir, exist_ok=True)
    corpus = os.path.join(args.work_dir, "corpus_x1.txt")
    if not os.path.exists(corpus):
        subprocess.run(
            [sys.executable, "-m", "pipeline.sample_corpus", f"--output_file={corpus}"],
            check=True,
            cwd=ROOT,
        )
    text = open(corpus, encoding="utf-8").read().rstrip("\n") + "\n"
    repeated = os.path.join(args.work_dir, f"corpus_x{args.repeat}.txt")
    with open(repeated, "w", encoding="utf-8") as f:
        f.write("\n".join([text] * args.repeat))
    vocab = args.vocab_file or os.path.join(args.work_dir, "vocab.txt")
    if not os.path.exists(vocab):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline.build_vocab",
                f"--input_file={corpus}",
                f"--output_file={vocab}",
                "--vocab_size=8000",
                "--runner=DirectRunner",
            ],
            check=True,
            cwd=ROOT,
        )
    return {"x1": corpus, f"x{args.repeat}": repeated}, vocab


MODES = {
    "bert": [],
    "roberta_full": ["--objective=roberta", "--packing=full_sentences"],
    "roberta_dynamic": ["--objective=roberta", "--packing=full_sentences", "--masking=dynamic"],
    "documents": ["--input_format=documents", "--document_boundary=line"],
    "bert_length_bins": ["--length_bins=32,64,96"],  # Same instances, 4 sets of shards.
}


def documents_corpus(corpus: str) -> str:
    """The GB-format corpus as raw documents: each document's sentences joined on one line."""
    path = corpus.replace(".txt", "_documents.txt")
    if not os.path.exists(path):
        blocks = open(corpus, encoding="utf-8").read().strip("\n").split("\n\n")
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(" ".join(b.split("\n")) + "\n" for b in blocks))
    return path


def run_ours(args, corpus: str, vocab: str, workers: int, tag: str, mode: str = "bert") -> dict:
    if mode == "documents":
        corpus = documents_corpus(corpus)
    name = f"ours_{tag}_{workers}w_{args.num_shards}s" + (f"_{mode}" if mode != "bert" else "")
    prefix = os.path.join(args.work_dir, name, "pretrain")
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    for old in glob.glob(prefix + "-*"):
        os.remove(old)
    beam = ["--runner=DirectRunner", f"--direct_num_workers={workers}"]
    if workers > 1:
        beam.append("--direct_running_mode=multi_processing")
    command = [
        sys.executable,
        "-m",
        "pipeline.create_pretraining_data",
        f"--input_file={corpus}",
        f"--output_file={prefix}",
        f"--vocab_file={vocab}",
        f"--dupe_factor={args.dupe_factor}",
        f"--num_shards={args.num_shards}",
        "--noreport",
        *MODES[mode],
        *beam,
    ]
    wall, peak, cpu = measure(command, prefix + ".log")
    instances = count_records(sorted(glob.glob(prefix + "-*.tfrecord")))
    if args.time_report:
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline.report",
                f"--input_file={prefix}-*.tfrecord",
                f"--output_dir={prefix}_report",
            ],
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
        print(f"report on {instances} records ({mode}): {time.perf_counter() - start:.1f} s")
    label = f"ours, {workers}w" + (f", {mode}" if mode != "bert" else "")
    return {
        "name": label,
        "cores": workers,
        "wall": wall,
        "cpu": cpu,
        "peak": peak,
        "instances": instances,
    }


def run_reference(args, corpus: str, vocab: str, tag: str) -> dict:
    output = os.path.join(args.work_dir, f"gb_{tag}.tfrecord")
    script = os.path.join(args.reference_dir, "create_pretraining_data.py")
    argv = [
        f"--input_file={corpus}",
        f"--output_file={output}",
        f"--vocab_file={vocab}",
        f"--dupe_factor={args.dupe_factor}",
        "--do_lower_case=True",
    ]
    launcher = GB_LAUNCHER.format(ref=args.reference_dir, script=script, argv=argv)
    wall, peak, cpu = measure([sys.executable, "-c", launcher], output + ".log")
    return {
        "name": "google-research/bert",
        "cores": 1,
        "wall": wall,
        "cpu": cpu,
        "peak": peak,
        "instances": count_records([output]),
    }


def compare_splitters(num_files: int = 60) -> None:
    """Sentence splitters on the docstrings of the first `num_files` stdlib files: chars/s."""
    import ast
    import itertools

    import tensorflow as tf
    import tensorflow_text as tft

    from pipeline import sample_corpus
    from pipeline.sentences import SentenceSplitter

    docs = []
    files = sample_corpus.iter_source_files(sample_corpus.stdlib_dir())
    for path in itertools.islice(files, num_files):
        try:
            tree = ast.parse(open(path, encoding="utf-8").read())
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module)):
                docstring = ast.get_docstring(node)
                if docstring:
                    docs.append(" ".join(docstring.split()))
    chars = sum(map(len, docs))
    splitter = SentenceSplitter()
    breaker = tft.StateBasedSentenceBreaker()

    def tf_split(texts):
        return breaker.break_sentences(tf.constant(texts)).flat_values.shape[0]

    tf_split(docs[:2])  # Warm-up.
    runs = [
        ("pysbd (pipeline.sentences)", lambda: sum(len(splitter.split(d)) for d in docs)),
        ("tensorflow_text.StateBasedSentenceBreaker", lambda: tf_split(docs)),
        (
            "regex (pipeline.sample_corpus)",
            lambda: sum(len(sample_corpus._SENTENCE_END.split(d)) for d in docs),
        ),
    ]
    print(f"{len(docs)} docstrings, {chars} characters, load {os.getloadavg()[0]:.1f}")
    for name, fn in runs:
        start = time.perf_counter()
        sentences = fn()
        seconds = time.perf_counter() - start
        print(f"{name:<44} {sentences:>6} sentences {chars / seconds / 1e6:>8.2f} M chars/s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work_dir", default="/tmp/pipeline_bench")
    parser.add_argument("--reference_dir", help="google-research/bert checkout; omit to skip it.")
    parser.add_argument("--vocab_file", help="Use this vocab instead of building one.")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--dupe_factor", type=int, default=5)
    parser.add_argument(
        "--workers", default="1,2", help="Worker counts to run ours with ('': only GB)."
    )
    parser.add_argument(
        "--num_shards", type=int, default=8, help="Ours: output shards (0: the runner decides)."
    )
    parser.add_argument(
        "--skip_reference_on", default="", help="Corpus tags (x1, x10) to run without GB."
    )
    parser.add_argument(
        "--modes", default="bert", help=f"Comma-separated, of {sorted(MODES)}; ours only."
    )
    parser.add_argument(
        "--time_report", action="store_true", help="Also time pipeline.report per run."
    )
    parser.add_argument("--corpora", default="", help="Corpus tags to run (x1, x10); default: all.")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="Run everything this many times, interleaved; "
        "the table shows medians (the machine's speed drifts by 10-20% over minutes).",
    )
    parser.add_argument(
        "--splitters", action="store_true", help="Only compare the sentence splitters."
    )
    args = parser.parse_args(argv)
    if args.splitters:
        compare_splitters()
        return
    corpora, vocab = prepare(args)
    if args.corpora:
        corpora = {t: c for t, c in corpora.items() if t in args.corpora.split(",")}
    runs = []
    for _ in range(args.rounds):  # Interleaved: a slow spell of the machine hits every run.
        for tag, corpus in corpora.items():
            size_mb = os.path.getsize(corpus) / 1e6
            for mode in args.modes.split(","):
                for workers in (int(w) for w in args.workers.split(",") if w):
                    row = run_ours(args, corpus, vocab, workers, tag, mode)
                    runs.append({**row, "corpus": f"{tag} ({size_mb:.1f} MB)"})
                    print(runs[-1], flush=True)
            if args.reference_dir and tag not in args.skip_reference_on.split(","):
                row = run_reference(args, corpus, vocab, tag)
                runs.append({**row, "corpus": f"{tag} ({size_mb:.1f} MB)"})
                print(runs[-1], flush=True)
    rows = median_rows(runs)

    print(
        f"\ndupe_factor={args.dupe_factor}, max_seq_length=128, load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    header = (
        f"{'corpus':<16} {'run':<32} {'instances':>10} {'wall s':>8} {'inst/s':>8} "
        f"{'inst/s/core':>11} {'CPU s':>8} {'inst/CPU-s':>10} {'peak RSS MB':>12} "
        f"{'CPU s range':>14}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        rate = row["instances"] / row["wall"]
        print(
            f"{row['corpus']:<16} {row['name']:<32} {row['instances']:>10} {row['wall']:>8.1f} "
            f"{rate:>8.0f} {rate / row['cores']:>11.0f} {row['cpu']:>8.1f} "
            f"{row['instances'] / row['cpu']:>10.0f} {row['peak'] / 2**20:>12.0f} "
            f"{row['cpu_range'][0]:>6.1f}-{row['cpu_range'][1]:<6.1f}"
        )
    print(f"(medians of {rows[0]['rounds'] if rows else 0} round(s))")
    print_marginal(rows)


def median_rows(runs: list[dict]) -> list[dict]:
    """One row per (corpus, run): the median of its rounds' wall and CPU times, the
    largest peak memory, and the CPU spread (`cpu_range`) over the rounds."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        groups.setdefault((run["corpus"], run["name"]), []).append(run)
    rows = []
    for same in groups.values():
        cpus = sorted(r["cpu"] for r in same)
        rows.append(
            {
                **same[0],
                "wall": statistics.median(r["wall"] for r in same),
                "cpu": statistics.median(cpus),
                "peak": max(r["peak"] for r in same),
                "cpu_range": (cpus[0], cpus[-1]),
                "rounds": len(same),
            }
        )
    return rows


def print_marginal(rows: list[dict]) -> None:
    """Per run, the extra instances per extra CPU-second from the smallest corpus to each
    larger one: the steady-state per-core speed, start-up (imports, pipeline construction)
    taken out. Both scripts pay a start-up: ours ~6-7 CPU-s, GB's ~5."""
    by_name: dict[str, list[dict]] = {}
    for row in rows:
        by_name.setdefault(row["name"], []).append(row)
    lines = []
    for name, runs in by_name.items():
        runs = sorted(runs, key=lambda r: r["instances"])
        for small, large in zip(runs, runs[1:], strict=False):
            extra_cpu = large["cpu"] - small["cpu"]
            if extra_cpu > 0:
                rate = (large["instances"] - small["instances"]) / extra_cpu
                lines.append(
                    f"{name:<32} {small['corpus']} -> {large['corpus']}: "
                    f"{rate:,.0f} instances per extra CPU-second"
                )
    if lines:
        print("\nMarginal (steady-state) per-core speed:")
        print("\n".join(lines))


if __name__ == "__main__":
    main()

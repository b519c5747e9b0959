"""The pretraining-data pipeline runs the way Dataflow runs it.

On Dataflow the workers import bert-keras from the sdist that `--setup_file=./setup.py` stages,
and with `--no_save_main_session` they unpickle every DoFn without the launching module's
globals. Here `python -m pipeline.create_pretraining_data` (so the module is `__main__`, as when
a user launches a job) runs under DirectRunner's `multi_processing` mode: two worker processes
that unpickle every DoFn, importing the package from that sdist, not from the source tree. Its
records must be those of an in-process run.

(tests/pipeline/test_create_pretraining_data.py compares the runners in-process; this adds
the launch as `__main__`, the main session off and the staged package.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import create_pretraining_data
from tests.pipeline.pipeline_test_util import generate_corpus, read_records, write_text, write_vocab

ROOT = Path(__file__).resolve().parents[1]
if "TEST_SRCDIR" in os.environ:  # Under `bazel test`: back from the runfiles to the tree.
    ROOT = Path(os.path.realpath(Path.cwd() / "pyproject.toml")).parent

_PIP = [sys.executable, "-m", "pip", "--no-cache-dir", "--disable-pip-version-check"]


def _staged_package(tmp_path: Path) -> Path:
    """Builds the sdist as Beam's stager does for `--setup_file`; installs it as a worker would."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.stager import Stager

    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in ("bert_keras", "pipeline"):
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    staging = tmp_path / "staging"
    staging.mkdir()
    options = PipelineOptions([f"--setup_file={source / 'setup.py'}", "--sdk_location=container"])
    Stager.create_job_resources(options, str(staging), log_submission_env_dependencies=False)
    (sdist,) = staging.glob("*.tar.gz")

    site = tmp_path / "worker_site"
    install = _PIP + ["install", "-q", "--no-index", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        install + ["--target", str(site), str(sdist)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return site


@pytest.mark.slow
def test_main_module_on_two_worker_processes_without_main_session(tmp_path: Path) -> None:
    site = _staged_package(tmp_path)
    write_text(str(tmp_path / "corpus" / "a.txt"), generate_corpus(8, sentences=(4, 10), seed=11))
    write_text(str(tmp_path / "corpus" / "b.txt"), generate_corpus(6, sentences=(4, 10), seed=12))
    vocab = write_vocab(str(tmp_path / "vocab.txt"))
    flags = [
        f"--input_file={tmp_path / 'corpus' / '*.txt'}",
        f"--vocab_file={vocab}",
        "--max_seq_length=48",
        "--max_predictions_per_seq=8",
        "--dupe_factor=2",
        "--num_shards=2",
        "--runner=DirectRunner",
    ]

    remote = str(tmp_path / "remote" / "records")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    )
    probe = subprocess.run(
        [sys.executable, "-c", "import pipeline; print(pipeline.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(probe.stdout.strip()).is_relative_to(site), "workers would not use the sdist"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.create_pretraining_data", *flags]
        + [f"--output_file={remote}", "--no_save_main_session"]
        + ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-5000:]

    local = str(tmp_path / "local" / "records")
    create_pretraining_data.run([*flags, f"--output_file={local}"])
    local_records = read_records(local)
    assert local_records, "the in-process run wrote no records"
    assert sorted(read_records(remote)) == sorted(local_records)

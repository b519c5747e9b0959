"""`pip install .` gives both packages and a console script per entry point; Beam can stage it.

Builds run on a copy of the files a distribution is made from (pyproject.toml, setup.py,
README.md, the two packages), so they see neither build leftovers nor the editable install.
"""

from __future__ import annotations

import ast
import concurrent.futures
import configparser
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if "TEST_SRCDIR" in os.environ:  # Under `bazel test`: back from the runfiles to the tree.
    ROOT = Path(os.path.realpath(Path.cwd() / "pyproject.toml")).parent
PACKAGES = ("bert_keras", "pipeline")
DIST_FILES = ("pyproject.toml", "setup.py", "README.md")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


# Offline, no shared cache (read-only under `bazel test`), our own sources and the venv's
# setuptools only (an isolated build would fetch setuptools from PyPI).
_PIP = [sys.executable, "-m", "pip", "--no-cache-dir", "--disable-pip-version-check"]
_PIP_OFFLINE = ["--no-index", "--no-deps", "--no-build-isolation"]


def _run(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, (
        f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def _package_files(base: Path) -> list[str]:
    """Every file of both packages under `base` (modules and package data), `base`-relative."""
    files = []
    for package in PACKAGES:
        for path in sorted((base / package).rglob("*")):
            rel = path.relative_to(base)
            if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
                files.append(rel.as_posix())
    return files


def _declared_scripts() -> dict[str, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def _module_file(module: str) -> str:
    return module.replace(".", "/") + ".py"


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("source")
    for name in DIST_FILES:
        shutil.copy2(ROOT / name, copy / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, copy / package, ignore=_IGNORE)
    return copy


@pytest.fixture(scope="module")
def wheel(source_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run(_PIP + ["wheel", "-q", *_PIP_OFFLINE, "-w", str(out), "."], cwd=source_copy)
    (wheel_path,) = out.glob("bert_keras-*.whl")
    return wheel_path


def test_wheel_holds_every_module_and_data_file_of_both_packages(
    wheel: Path, source_copy: Path
) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    missing = [f for f in _package_files(source_copy) if f not in names]
    assert not missing, f"files of the packages missing from the wheel: {missing}"
    strays = sorted(n for n in names if n.split("/")[0] not in PACKAGES and ".dist-info/" not in n)
    assert not strays, f"the wheel ships files outside the packages: {strays}"


def test_wheel_has_a_console_script_per_entry_point(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        (ep_name,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        entry_points = configparser.ConfigParser()
        entry_points.read_string(zf.read(ep_name).decode())
        sources = {n: zf.read(n).decode() for n in zf.namelist() if n.endswith(".py")}
    scripts = dict(entry_points["console_scripts"])
    assert scripts == _declared_scripts()

    for name, spec in scripts.items():
        assert name.startswith("bert-keras-"), name
        module, _, func = spec.partition(":")
        assert func == "cli", f"{name}: entry points call `cli()`, got {spec}"
        source = sources.get(_module_file(module))
        assert source is not None, f"{name}: module {module} is not in the wheel"
        functions = {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
        assert func in functions, f"{name}: {module} defines no top-level `{func}()`"

    # Every `python -m` module of the packages (a `__main__` guard) has its console script.
    with_main = {
        path
        for path, source in sources.items()
        if any(_is_main_guard(node) for node in ast.parse(source).body)
    }
    scripted = {_module_file(spec.partition(":")[0]) for spec in scripts.values()}
    assert with_main <= scripted, (
        f"modules with a main but no console script: {with_main - scripted}"
    )


def test_setup_file_stages_an_installable_sdist_for_beam_workers(
    source_copy: Path, tmp_path: Path
) -> None:
    """`--setup_file=./setup.py` as Beam's stager handles it, then installed as a worker would."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.stager import Stager

    staging = tmp_path / "staging"
    staging.mkdir()
    options = PipelineOptions(
        [f"--setup_file={source_copy / 'setup.py'}", "--sdk_location=container"]
    )
    cwd = Path.cwd()
    resources = Stager.create_job_resources(
        options, str(staging), log_submission_env_dependencies=False
    )
    assert Path.cwd() == cwd
    (sdist,) = staging.glob("*.tar.gz")
    assert any(str(sdist) in str(r) for r in resources), resources

    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    missing = [f for f in list(DIST_FILES) + _package_files(source_copy) if f not in names]
    assert not missing, f"files missing from the sdist Beam stages: {missing}"

    # A worker pip-installs the tarball; no deps (they are in the worker image / venv).
    target = tmp_path / "worker_site"
    _run(_PIP + ["install", "-q", *_PIP_OFFLINE, "--target", str(target), str(sdist)], cwd=tmp_path)
    probe = "import bert_keras, pipeline; print(bert_keras.__file__); print(pipeline.__file__)"
    env = dict(os.environ, PYTHONPATH=str(target))
    out = _run([sys.executable, "-c", probe], cwd=tmp_path, env=env).stdout.split()
    assert all(Path(p).is_relative_to(target) for p in out), out
    for name in _declared_scripts():
        assert (target / "bin" / name).exists(), f"console script {name} not installed"


@pytest.mark.slow
def test_installed_console_scripts_start(wheel: Path, tmp_path: Path) -> None:
    """Each installed console script runs its `cli()` up to flag parsing (`--help`)."""
    target = tmp_path / "site"
    _run(_PIP + ["install", "-q", *_PIP_OFFLINE, "--target", str(target), str(wheel)], cwd=tmp_path)
    env = dict(os.environ, PYTHONPATH=str(target))

    def start(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(target / "bin" / name), "--help"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    # Each start imports TensorFlow or Beam: a few at a time on the 2-core CI machine.
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        names = list(_declared_scripts())
        results = dict(zip(names, pool.map(start, names), strict=True))
    for name, result in results.items():
        # absl exits 1 after --help, argparse 0; either prints its usage and no traceback.
        assert result.returncode in (0, 1), f"{name} --help:\n{result.stderr[-3000:]}"
        assert "Traceback" not in result.stderr, f"{name} --help:\n{result.stderr[-3000:]}"
        assert "usage" in result.stdout.lower(), f"{name} --help printed no usage:\n{result.stdout}"

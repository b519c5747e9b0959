"""Every module, test file, data file and entry point of the tree is covered by a Bazel target.

The targets come from `bazel query --output=build //...` when Bazel is installed (what Bazel
itself sees, globs expanded), else from evaluating the BUILD files in Python with stand-ins for
`glob`, `load` and the rules (BUILD is Starlark, a Python subset). Under `bazel test` the
second route runs on the source tree the runfiles point back to.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import shutil
import subprocess
import tomllib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def _workspace() -> Path:
    here = Path(__file__)
    if "TEST_SRCDIR" in os.environ:  # Under `bazel test`: back from the runfiles to the tree.
        return Path(os.path.realpath(Path.cwd() / "pyproject.toml")).parent
    return here.resolve().parents[1]


ROOT = _workspace()

# Folders whose Python files must be in some target's srcs.
PY_FOLDERS = ("bert_keras", "pipeline", "tests", "benchmarks", "tools")
# Folders whose other files (package data, test data) must be in some target's data.
DATA_FOLDERS = ("bert_keras", "pipeline", "tests")
# Folders holding `python -m` entry points.
ENTRYPOINT_FOLDERS = ("bert_keras", "pipeline", "benchmarks")
_SKIP_PARTS = {"__pycache__"}
_SKIP_SUFFIXES = {".pyc"}
_BUILD_NAMES = ("BUILD", "BUILD.bazel")


@dataclasses.dataclass
class Target:
    kind: str
    label: str
    srcs: list[str]  # Workspace-relative paths.
    data: list[str]
    main: str | None
    tags: list[str] = dataclasses.field(default_factory=list)


# --- Labels and globs -----------------------------------------------------------------------


def _label_to_path(label: str, package: str) -> str:
    """`//pkg:a/b.py`, `:b.py` or `b.py` (in `package`) -> `pkg/a/b.py`."""
    if label.startswith("@"):
        return label
    if label.startswith("//"):
        package, _, name = label[2:].partition(":")
        if not name:
            name = package.rsplit("/", 1)[-1]
    else:
        name = label[1:] if label.startswith(":") else label
    return f"{package}/{name}" if package else name


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _bazelignored(root: Path) -> set[str]:
    path = root / ".bazelignore"
    if not path.exists():
        return set()
    return {line.strip().rstrip("/") for line in path.read_text().splitlines() if line.strip()}


def _package_files(root: Path, package: str) -> list[str]:
    """Files of a package, package-relative, as Bazel's glob sees them (no subpackages)."""
    ignored = _bazelignored(root)
    base = root / package
    files = []
    for dirpath, dirnames, filenames in os.walk(base):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        keep = []
        for d in dirnames:
            sub = f"{rel_dir}/{d}" if rel_dir != "." else d
            if sub in ignored or any((Path(dirpath) / d / b).exists() for b in _BUILD_NAMES):
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            files.append((Path(dirpath) / f).relative_to(base).as_posix())
    return sorted(files)


# --- Targets from `bazel query` ---------------------------------------------------------------


def _targets_from_bazel_query(root: Path) -> list[Target]:
    result = subprocess.run(
        ["bazel", "query", "--output=build", "//..."],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (
        f"bazel query failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    )
    targets = []
    for node in ast.parse(result.stdout).body:
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
            continue
        call = node.value
        assert isinstance(call.func, ast.Name)
        attrs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
        targets.append(_make_target(call.func.id, attrs, package=None))
    return targets


def _make_target(kind: str, attrs: dict[str, Any], package: str | None) -> Target:
    """`package=None`: labels are absolute (bazel query); else relative to `package`."""
    pkg = package or ""

    def paths(labels: list[str]) -> list[str]:
        return [_label_to_path(label, pkg) for label in labels]

    name = attrs["name"]
    main = attrs.get("main")
    srcs = paths(attrs.get("srcs", []))
    if kind in ("py_binary", "py_test"):
        main_path = _label_to_path(main, pkg) if main else f"{pkg}/{name}.py".lstrip("/")
    else:
        main_path = None
    data = paths(attrs.get("data", []))
    return Target(kind, f"//{pkg}:{name}", srcs, data, main_path, list(attrs.get("tags", [])))


# --- Targets from evaluating the BUILD files --------------------------------------------------

_RULE_KINDS = (
    "py_library",
    "py_binary",
    "py_test",
    "py_runtime",
    "sh_binary",
    "filegroup",
    "test_suite",
    "alias",
    "toolchain",
)


def _targets_from_build_files(
    root: Path, namespaces: dict[str, dict[str, Any]] | None = None
) -> list[Target]:
    """Runs each BUILD file (and the .bzl files it loads) as Python with recording stubs.

    `namespaces`, when given, receives each package's global names after its BUILD ran.
    """
    targets: list[Target] = []
    ignored = _bazelignored(root)
    build_files = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).as_posix()
        dirnames[:] = [
            d for d in dirnames if (f"{rel}/{d}" if rel != "." else d) not in ignored | {".git"}
        ]
        build_files += [Path(dirpath) / b for b in _BUILD_NAMES if b in filenames]

    for build_file in build_files:
        package = build_file.parent.relative_to(root).as_posix()
        package = "" if package == "." else package
        namespace = _evaluate_package(root, package, build_file, targets)
        if namespaces is not None:
            namespaces[package] = namespace
    return targets


def _evaluate_package(
    root: Path, package: str, build_file: Path, targets: list[Target]
) -> dict[str, Any]:
    """Runs one BUILD file; its rules append to `targets`. Returns its global names."""

    def rule(kind: str) -> Callable[..., None]:
        def record(**attrs: Any) -> None:
            targets.append(_make_target(kind, attrs, package))

        return record

    def glob(
        include: list[str],
        exclude: tuple[str, ...] | list[str] = (),
        allow_empty: bool = True,
        **_: Any,
    ) -> list[str]:
        inc = [_glob_regex(p) for p in include]
        exc = [_glob_regex(p) for p in exclude]
        return [
            f
            for f in _package_files(root, package)
            if any(r.match(f) for r in inc) and not any(r.match(f) for r in exc)
        ]

    native: dict[str, Any] = {k: rule(k) for k in _RULE_KINDS}
    native.update(
        glob=glob,
        package=lambda **_: None,
        exports_files=lambda *_, **__: None,
        licenses=lambda *_: None,
    )

    def run(path: Path, namespace: dict[str, Any]) -> dict[str, Any]:
        def load(label: str, *names: str, **aliases: str) -> None:
            if label.startswith("@"):  # External rules: the native stand-ins.
                module = dict(native)
            else:
                bzl_package, _, bzl_name = label[2:].partition(":")
                module = run(root / bzl_package / bzl_name, {"native": _Native(native)})
            namespace.update({n: module[n] for n in names})
            namespace.update({alias: module[n] for alias, n in aliases.items()})

        namespace.update(native, load=load)
        exec(compile(path.read_text(), str(path), "exec"), namespace)
        return namespace

    return run(build_file, {})


class _Native:
    """`native.<rule>` inside .bzl macros."""

    def __init__(self, rules: dict[str, Any]) -> None:
        self.__dict__.update(rules)


# --- The tree ---------------------------------------------------------------------------------


def _tree_files(folders: tuple[str, ...]) -> list[str]:
    ignored = _bazelignored(ROOT)
    out = []
    for folder in folders:
        if not (ROOT / folder).is_dir():
            continue
        for path in sorted((ROOT / folder).rglob("*")):
            rel = path.relative_to(ROOT)
            if (
                path.is_dir()
                or _SKIP_PARTS & set(rel.parts)
                or path.suffix in _SKIP_SUFFIXES
                or path.name in _BUILD_NAMES
                or any(rel.as_posix().startswith(i + "/") for i in ignored)
            ):
                continue
            out.append(rel.as_posix())
    return out


def _has_main(path: str) -> bool:
    tree = ast.parse((ROOT / path).read_text(), filename=path)
    for node in tree.body:
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name)
            and node.test.left.id == "__name__"
        ):
            return True
    return False


def _console_script_modules() -> dict[str, str]:
    """console script name -> module file, from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        name: spec.split(":")[0].replace(".", "/") + ".py"
        for name, spec in project.get("scripts", {}).items()
    }


# --- Tests ------------------------------------------------------------------------------------

_UNDER_BAZEL = "TEST_SRCDIR" in os.environ
_ROUTES: list[Any] = ["build_files"]
if shutil.which("bazel") and not _UNDER_BAZEL:
    # Marked slow so `make test` runs it in its pytest part (outside Bazel, which cannot query
    # itself from inside a test); the build_files route runs under Bazel.
    _ROUTES.insert(0, pytest.param("bazel_query", marks=pytest.mark.slow))


@pytest.fixture(scope="module", params=_ROUTES)
def targets(request: pytest.FixtureRequest) -> list[Target]:
    if request.param == "bazel_query":
        return _targets_from_bazel_query(ROOT)
    return _targets_from_build_files(ROOT)


def test_every_python_file_is_in_a_target(targets: list[Target]) -> None:
    covered = {src for t in targets for src in t.srcs}
    missing = [f for f in _tree_files(PY_FOLDERS) if f.endswith(".py") and f not in covered]
    assert not missing, f"Python files in no Bazel target (extend BUILD): {missing}"


def test_every_test_file_has_a_py_test(targets: list[Target]) -> None:
    tested = {src for t in targets if t.kind == "py_test" for src in t.srcs}
    test_files = [f for f in _tree_files(("tests",)) if re.search(r"(^|/)test_[^/]*\.py$", f)]
    assert test_files, "no test files found: wrong workspace?"
    missing = [f for f in test_files if f not in tested]
    assert not missing, f"test files without a py_test: {missing}"


def test_every_data_file_is_in_a_target(targets: list[Target]) -> None:
    covered = {d for t in targets for d in t.data} | {s for t in targets for s in t.srcs}
    missing = [f for f in _tree_files(DATA_FOLDERS) if not f.endswith(".py") and f not in covered]
    assert not missing, f"data files in no target's data (extend BUILD): {missing}"


def test_every_entry_point_has_a_py_binary(targets: list[Target]) -> None:
    mains = {t.main for t in targets if t.kind == "py_binary"}
    modules = [f for f in _tree_files(ENTRYPOINT_FOLDERS) if f.endswith(".py") and _has_main(f)]
    missing = [f for f in modules if f not in mains]
    assert not missing, f"modules with a __main__ block but no py_binary: {missing}"
    scripts = _console_script_modules()
    unbound = {name: f for name, f in scripts.items() if f not in mains}
    assert not unbound, f"console scripts whose module has no py_binary: {unbound}"


def test_targets_name_existing_files(targets: list[Target]) -> None:
    """Catches a BUILD file naming a source that no longer exists (globs never do)."""
    named = {p for t in targets for p in t.srcs + t.data if not p.startswith("@")}
    absent = sorted(p for p in named if not (ROOT / p).exists())
    assert not absent, f"BUILD names files that do not exist: {absent}"


def test_libraries_cover_both_packages(targets: list[Target]) -> None:
    libraries = {t.label for t in targets if t.kind == "py_library"}
    assert {"//:bert_keras", "//:pipeline"} <= libraries


# --- Which tests run where -------------------------------------------------------------------
# `make test` runs each test once: Bazel runs `-m "not slow"` on every test file whose py_test is
# not tagged `slow` (scripts/bazel_check.sh), then pytest runs `-m slow` over tests/. A test runs
# in neither only if it is not slow and its file is tagged `slow`, or if pytest collects a file
# that has no py_test; the tests below rule both out.


def _is_slow_mark(node: ast.expr) -> bool:
    """`pytest.mark.slow` (also called, `pytest.mark.slow(...)`)."""
    if isinstance(node, ast.Call):
        node = node.func
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "slow"
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "mark"
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "pytest"
    )


def _pytestmark_is_slow(body: list[ast.stmt]) -> bool:
    """`pytestmark = pytest.mark.slow` or a list/tuple holding it, in a module or class body."""
    for node in body:
        if not (isinstance(node, ast.Assign | ast.AnnAssign)):
            continue
        names = node.targets if isinstance(node, ast.Assign) else [node.target]
        if not any(isinstance(n, ast.Name) and n.id == "pytestmark" for n in names):
            continue
        value = node.value
        marks = value.elts if isinstance(value, ast.List | ast.Tuple) else [value]
        if any(m is not None and _is_slow_mark(m) for m in marks):
            return True
    return False


def _tests_by_slowness(path: str) -> tuple[list[str], list[str]]:
    return _source_tests_by_slowness((ROOT / path).read_text(), path)


def _source_tests_by_slowness(source: str, filename: str) -> tuple[list[str], list[str]]:
    """(slow, not slow) test names of a test file, read statically the way pytest collects them.

    A test counts as slow only when the mark is certain (`pytestmark` of its module or class, or
    `@pytest.mark.slow` on it or its class); anything else counts as not slow, which can only make
    the check below stricter.
    """
    tree = ast.parse(source, filename=filename)
    module_slow = _pytestmark_is_slow(tree.body)
    slow: list[str] = []
    fast: list[str] = []

    def add(fn: ast.FunctionDef | ast.AsyncFunctionDef, name: str, inherited: bool) -> None:
        is_slow = inherited or any(_is_slow_mark(d) for d in fn.decorator_list)
        (slow if is_slow else fast).append(name)

    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            add(node, node.name, module_slow)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            class_slow = (
                module_slow
                or any(_is_slow_mark(d) for d in node.decorator_list)
                or _pytestmark_is_slow(node.body)
            )
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and (
                    item.name.startswith("test")
                ):
                    add(item, f"{node.name}.{item.name}", class_slow)
    return slow, fast


def _test_files() -> list[str]:
    return [f for f in _tree_files(("tests",)) if re.search(r"(^|/)test_[^/]*\.py$", f)]


def test_slow_tagged_py_tests_hold_only_slow_tests(targets: list[Target]) -> None:
    """A py_test tagged `slow` is skipped by `make test`'s Bazel part: all its tests must be slow
    (pytest runs those). A file of slow tests only should be tagged (else a warning)."""
    tagged = {src for t in targets if t.kind == "py_test" and "slow" in t.tags for src in t.srcs}
    tagged &= set(_test_files())
    with_fast = {f: fast[:3] for f in sorted(tagged) if (fast := _tests_by_slowness(f)[1])}
    assert not with_fast, (
        f"py_tests tagged `slow` (SLOW_TEST_FILES in BUILD) whose file has tests not marked "
        f"@pytest.mark.slow, which `make test` would run nowhere: {with_fast}"
    )
    untagged_slow_only = [
        f
        for f in _test_files()
        if f not in tagged and (by := _tests_by_slowness(f))[0] and not by[1]
    ]
    if untagged_slow_only:  # Harmless (a process that selects nothing), so only a warning.
        warnings.warn(
            f"test files whose tests are all slow: add them to SLOW_TEST_FILES in BUILD so "
            f"`make test` starts no Bazel process for them: {untagged_slow_only}",
            stacklevel=1,
        )


def test_slow_test_files_list_names_existing_test_files() -> None:
    namespaces: dict[str, dict[str, Any]] = {}
    _targets_from_build_files(ROOT, namespaces)
    listed = namespaces[""]["SLOW_TEST_FILES"]
    absent = [f for f in listed if f not in _test_files()]
    assert not absent, f"SLOW_TEST_FILES in BUILD names missing test files: {absent}"


def test_pytest_collects_only_files_bazel_has() -> None:
    """pytest's test files are the ones BUILD globs (tests/**/test_*.py), no more."""
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    ini = options["ini_options"]
    assert ini.get("testpaths") == ["tests"]
    assert ini.get("python_files") == ["test_*.py"], (
        "pytest's python_files must stay ['test_*.py'] (pytest's default also collects "
        "*_test.py, which no py_test covers)"
    )


def test_slow_mark_reader_sees_the_marks() -> None:
    """The static reader above on a sample of each form of the mark."""
    source = """
import pytest

pytestmark = [pytest.mark.timeout(5)]

@pytest.mark.slow
def test_a(): ...

@pytest.mark.slow(reason="x")
def test_b(): ...

def test_c(): ...

def helper(): ...

@pytest.mark.slow
class TestD:
    def test_e(self): ...

class TestF:
    pytestmark = pytest.mark.slow

    def test_g(self): ...

class TestH:
    def test_i(self): ...
"""
    slow, fast = _source_tests_by_slowness(source, "test_sample.py")
    assert slow == ["test_a", "test_b", "TestD.test_e", "TestF.test_g"]
    assert fast == ["test_c", "TestH.test_i"]
    module_slow = "import pytest\npytestmark = pytest.mark.slow\ndef test_x(): ...\n"
    assert _source_tests_by_slowness(module_slow, "test_x.py") == (["test_x"], [])

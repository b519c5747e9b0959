"""Bazel `py_test` main: runs pytest on the test files passed as arguments.

Bazel's test protocol is honoured: JUnit XML goes to $XML_OUTPUT_FILE and
`bazel test --test_filter=EXPR` becomes pytest's `-k EXPR`. Extra pytest options can follow the
files (`args = [...]` in BUILD, or `--test_arg=...`): `bazel test //... --test_arg=-m
--test_arg="not slow"` runs the fast tests of every file; a file whose tests that selection
leaves out entirely passes, as there is nothing to run.
"""

import os
import resource
import sys
import time

import pytest


def _report_times(start: float) -> None:
    """One line for the test log: wall and CPU seconds (this process and its children), so the
    cost of a target can be judged on a loaded machine too (CPU time barely depends on load)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    print(f"pytest_main: wall {time.monotonic() - start:.1f} s, cpu {cpu:.1f} s", flush=True)


def main(argv: list[str]) -> int:
    start = time.monotonic()
    try:
        return _run(argv)
    finally:
        _report_times(start)


def _run(argv: list[str]) -> int:
    args = ["-p", "no:cacheprovider", "-q", "-ra", "-c", "pyproject.toml", "--rootdir", "."]
    if xml := os.environ.get("XML_OUTPUT_FILE"):
        args.append(f"--junitxml={xml}")
    if test_filter := os.environ.get("TESTBRIDGE_TEST_ONLY"):
        args += ["-k", test_filter]
    code = pytest.main(args + argv)
    selecting = test_filter or any(
        a == "-m" or a == "-k" or a.startswith(("-m=", "-k=")) for a in argv
    )
    if code == pytest.ExitCode.NO_TESTS_COLLECTED and selecting:
        return pytest.ExitCode.OK
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

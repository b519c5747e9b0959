"""Bazel `py_test` main: runs pytest on the test files passed as arguments.

Bazel's test protocol is honoured: JUnit XML goes to $XML_OUTPUT_FILE and
`bazel test --test_filter=EXPR` becomes pytest's `-k EXPR`. Extra pytest options can follow the
files (`args = [...]` in BUILD, or `--test_arg=...`).
"""

import os
import sys

import pytest


def main(argv: list[str]) -> int:
    args = ["-p", "no:cacheprovider", "-q", "-ra", "-c", "pyproject.toml", "--rootdir", "."]
    if xml := os.environ.get("XML_OUTPUT_FILE"):
        args.append(f"--junitxml={xml}")
    if test_filter := os.environ.get("TESTBRIDGE_TEST_ONLY"):
        args += ["-k", test_filter]
    return pytest.main(args + argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

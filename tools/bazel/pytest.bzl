"""`py_pytest`: one Bazel `py_test` per pytest file, run by tools/bazel/pytest_main.py."""

load("@rules_python//python:defs.bzl", "py_test")

_MAIN = "//tools/bazel:pytest_main.py"

def py_pytest(name, src, deps = [], data = [], args = [], **kwargs):
    """Declares a `py_test` that runs pytest on one test file.

    Args:
      name: target name.
      src: the test file (`tests/.../test_*.py`).
      deps: Python libraries the test imports.
      data: files the test reads.
      args: extra pytest arguments, after the file.
      **kwargs: passed on to `py_test` (size, tags, timeout, ...).
    """
    py_test(
        name = name,
        srcs = [src, _MAIN],
        main = _MAIN,
        args = ["$(rootpath %s)" % src] + args,
        data = data + ["//:pyproject.toml"],
        deps = deps,
        python_version = "PY3",
        srcs_version = "PY3",
        **kwargs
    )

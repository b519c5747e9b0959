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

    # pytest's own per-test limit is 900 s (pyproject.toml); a file of several tests on a
    # loaded 2-core machine can pass Bazel's default 300 s, so the file gets "long" (900 s).
    kwargs.setdefault("timeout", "long")
    py_test(
        name = name,
        srcs = [src, _MAIN],
        main = _MAIN,
        args = ["$(rootpath %s)" % src] + args,
        # pytest's settings, and the locked versions the virtualenv was installed from: a cached
        # test result is only reused for the same dependencies.
        data = data + [
            "//:pyproject.toml",
            "//:requirements.lock",
        ],
        deps = deps,
        python_version = "PY3",
        srcs_version = "PY3",
        **kwargs
    )

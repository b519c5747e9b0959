"""Bazel's built-in Python providers under names defs.bzl can re-export.

(A file cannot both read the builtin `PyInfo` and define a global `PyInfo`.)
"""

internal_PyInfo = PyInfo
internal_PyRuntimeInfo = PyRuntimeInfo

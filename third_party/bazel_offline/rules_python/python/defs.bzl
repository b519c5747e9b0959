"""Offline stand-in for rules_python's `//python:defs.bzl`.

Bazel 4.2.3 still implements the Python rules natively; upstream rules_python (0.x) wraps them
in macros that add a migration tag, which is what we do here, so that
`--incompatible_load_python_rules_from_bzl` accepts only rules loaded from this file.
See third_party/bazel_offline/README.md for why this stand-in exists.
"""

load("@bazel_tools//tools/python:srcs_version.bzl", _find_requirements = "find_requirements")
load("@bazel_tools//tools/python:toolchain.bzl", _py_runtime_pair = "py_runtime_pair")
load("//python/private:reexports.bzl", "internal_PyInfo", "internal_PyRuntimeInfo")

# The tag the native rules require once --incompatible_load_python_rules_from_bzl is set.
_MIGRATION_TAG = "__PYTHON_RULES_MIGRATION_DO_NOT_USE_WILL_BREAK__"

def _add_tags(attrs):
    attrs["tags"] = list(attrs.get("tags", [])) + [_MIGRATION_TAG]
    return attrs

def py_library(**attrs):
    """Forwards to the native `py_library`."""
    native.py_library(**_add_tags(attrs))

def py_binary(**attrs):
    """Forwards to the native `py_binary`."""
    native.py_binary(**_add_tags(attrs))

def py_test(**attrs):
    """Forwards to the native `py_test`."""
    native.py_test(**_add_tags(attrs))

def py_runtime(**attrs):
    """Forwards to the native `py_runtime`."""
    native.py_runtime(**_add_tags(attrs))

py_runtime_pair = _py_runtime_pair
find_requirements = _find_requirements
PyInfo = internal_PyInfo
PyRuntimeInfo = internal_PyRuntimeInfo

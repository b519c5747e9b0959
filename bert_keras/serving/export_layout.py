"""TF Serving's versioned layout: `EXPORT_DIR/NAME/VERSION/saved_model.pb`.

TF Serving watches `--model_base_path=EXPORT_DIR/NAME` and serves the highest integer
VERSION it finds. It polls that folder, so a version must appear complete: we write into a
temporary sibling whose name is not an integer (ignored by the server) and rename it to
VERSION at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import tensorflow as tf

_TEMP_PREFIX = ".tmp-"


def existing_versions(model_dir: str) -> list[int]:
    """The integer version folders of `model_dir` (EXPORT_DIR/NAME), ascending."""
    if not tf.io.gfile.isdir(model_dir):
        return []
    versions = []
    for entry in tf.io.gfile.listdir(model_dir):
        entry = entry.rstrip("/")
        if entry.isdigit() and tf.io.gfile.isdir(os.path.join(model_dir, entry)):
            versions.append(int(entry))
    return sorted(versions)


def next_version(model_dir: str) -> int:
    """1 for a new model, else one more than the highest existing version."""
    versions = existing_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def write_versioned(
    export_dir: str, name: str, write: Callable[[str], None], version: int | None = None
) -> str:
    """Calls `write(temp_dir)`, then publishes `temp_dir` as `export_dir/name/VERSION`.

    Args:
        export_dir: the root; the model goes to `export_dir/name/VERSION`.
        name: the model name (TF Serving's `--model_name`).
        write: writes the SavedModel into the folder it is given.
        version: an explicit version; None: `next_version`. An existing version is an error,
            never overwritten (a server may be serving it).

    Returns: the published folder. On an exception nothing is published.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"--model_name={name!r}: must be a non-empty folder name.")
    model_dir = os.path.join(export_dir, name)
    tf.io.gfile.makedirs(model_dir)
    if version is None:
        version = next_version(model_dir)
    if int(version) < 0:
        raise ValueError(f"--version={version}: must be a non-negative integer.")
    final = os.path.join(model_dir, str(int(version)))
    if tf.io.gfile.exists(final):
        raise ValueError(
            f"{final} already exists; pick another --version or leave it unset for the next one."
        )
    temp = os.path.join(model_dir, f"{_TEMP_PREFIX}{int(version)}-{os.getpid()}-{time.time_ns()}")
    tf.io.gfile.makedirs(temp)
    try:
        write(temp)
    except BaseException:
        tf.io.gfile.rmtree(temp)
        raise
    tf.io.gfile.rename(temp, final)
    return final

"""Runs SavedModels the way TF Serving does: in a new Python process that imports only
`tensorflow` and `tensorflow_text`.

The child runs isolated (`python -I`: no PYTHONPATH, no user site, no script folder on the
path) from a folder outside the repository, with an import hook that refuses `bert_keras`,
`pipeline` and `keras_hub`, and reports which modules it ended up importing.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np

# Packages the SavedModel must not need: the project's, and keras-hub's.
FORBIDDEN_PACKAGES = ("bert_keras", "pipeline", "keras_hub")

_CHILD = r"""
import importlib.abc, pickle, sys, traceback

FORBIDDEN = tuple(sys.argv[3].split(","))
attempted = []


class _Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            attempted.append(name)
            raise ImportError(f"{name} is not available to a serving process")
        return None


sys.meta_path.insert(0, _Refuse())

import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the custom ops the graph uses)

with open(sys.argv[1], "rb") as f:
    calls = pickle.load(f)


def run_in_session(path, signature, inputs):
    # As TF Serving runs a model: the signature_def of the MetaGraph in a TF1 session.
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        signature_def = meta_graph.signature_def[signature]
        feeds = {signature_def.inputs[k].name: v for k, v in inputs.items()}
        fetches = {k: v.name for k, v in signature_def.outputs.items()}
        return session.run(fetches, feeds)


models, signatures, results = {}, {}, []
for call in calls:
    path = call["saved_model"]
    if call.get("session"):
        try:
            results.append(run_in_session(path, call["signature"], call["inputs"]))
        except Exception as e:
            results.append({"error": type(e).__name__, "message": str(e)})
        continue
    if path not in models:
        models[path] = tf.saved_model.load(path)
        signatures[path] = sorted(models[path].signatures)
    try:
        fn = models[path].signatures[call["signature"]]
        outputs = fn(**{k: tf.constant(v) for k, v in call["inputs"].items()})
        results.append({k: v.numpy() for k, v in outputs.items()})
    except Exception as e:  # Reported to the test, which decides what is expected.
        results.append({"error": type(e).__name__, "message": str(e)})
response = {
    "results": results,
    "signatures": signatures,
    "attempted_imports": attempted,
    "loaded_forbidden": sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN),
}
with open(sys.argv[2], "wb") as f:
    pickle.dump(response, f)
"""


def isolated_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONSAFEPATH"] = "1"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def run_signatures(calls: list[dict], workdir: Path, timeout: int = 240) -> dict:
    """Calls signatures of SavedModels in one fresh process (each model loaded once).

    Args:
        calls: [{"saved_model": path, "signature": name, "inputs": {name: np.ndarray}}, ...];
            with `"session": True` a call runs as TF Serving runs it (the signature_def in a
            TF1 session, not the TF2 object graph).
        workdir: a folder outside the repository (the child's cwd, request/response files).

    Returns: {"results": one dict per call, outputs as np.ndarray, or {"error", "message"};
    "signatures": {path: names}; "attempted_imports" / "loaded_forbidden": any forbidden module
    the load tried to import / imported}.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    request_path, response_path = workdir / "request.pkl", workdir / "response.pkl"
    with open(request_path, "wb") as f:
        pickle.dump(calls, f)
    completed = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            _CHILD,
            str(request_path),
            str(response_path),
            ",".join(FORBIDDEN_PACKAGES),
        ],
        cwd=workdir,
        env=isolated_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise AssertionError(
            f"fresh process failed ({completed.returncode}):\n{completed.stderr[-4000:]}"
        )
    with open(response_path, "rb") as f:
        return pickle.load(f)


def saved_model_cli_show_all(saved_model: str, workdir: Path, timeout: int = 240) -> str:
    """The output of `saved_model_cli show --all --dir saved_model`, run with
    tensorflow_text imported first (the CLI loads the model, which needs its ops)."""
    workdir.mkdir(parents=True, exist_ok=True)
    code = (
        "import sys, tensorflow_text\n"
        "from tensorflow.python.tools import saved_model_cli\n"
        f"sys.argv = ['saved_model_cli', 'show', '--all', '--dir', {str(saved_model)!r}]\n"
        "saved_model_cli.main()\n"
    )
    completed = subprocess.run(
        [sys.executable, "-I", "-c", code],
        cwd=workdir,
        env=isolated_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise AssertionError(f"saved_model_cli failed:\n{completed.stderr[-4000:]}")
    return completed.stdout


def strings(values: list[str | bytes]) -> np.ndarray:
    """A (B,) object array of bytes, the form tf.constant turns into tf.string."""
    array = np.empty([len(values)], dtype=object)
    for i, value in enumerate(values):
        array[i] = value.encode("utf-8") if isinstance(value, str) else value
    return array

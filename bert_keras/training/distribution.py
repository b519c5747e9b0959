"""The `tf.distribute.Strategy` named by `--strategy`, and who is the chief.

All four strategies go through the same training loop (`trainer.py`); only the object
made here differs.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")


def create_strategy(name: str, tpu: str | None = None) -> tf.distribute.Strategy:
    """`one_device` (first GPU, else CPU), `mirrored` (all local GPUs, else all logical
    CPUs), `multi_worker_mirrored` (cluster from `TF_CONFIG`), `tpu` (`tpu` is the address
    or name of the TPU; "" or "local" for a TPU VM).

    Must run before any TensorFlow op touches a device: the multi-worker and TPU strategies
    initialise the runtime themselves.
    """
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker_mirrored":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "--strategy=multi_worker_mirrored needs the TF_CONFIG environment variable "
                "(cluster and task of this worker)."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        if tpu is None:
            raise ValueError("--strategy=tpu needs --tpu (address, name, or 'local').")
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        if tpu not in ("", "local"):
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"--strategy={name!r}; choose one of {STRATEGIES}.")


def task_info(strategy: tf.distribute.Strategy) -> tuple[str | None, int]:
    """(task type, task id) of this process; (None, 0) outside a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is not None and resolver.task_type is not None:
        return resolver.task_type, int(resolver.task_id or 0)
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    return task.get("type"), int(task.get("index", 0))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """The chief writes checkpoints, summaries and metrics; other workers write to scratch.

    With no explicit "chief" task, worker 0 is the chief (MultiWorkerMirroredStrategy's
    convention).
    """
    task_type, task_id = task_info(strategy)
    if task_type is None or task_type == "chief":
        return True
    if task_type == "worker":
        cluster = getattr(getattr(strategy, "cluster_resolver", None), "cluster_spec", None)
        has_chief = cluster is not None and "chief" in cluster().as_dict()
        return not has_chief and task_id == 0
    return False

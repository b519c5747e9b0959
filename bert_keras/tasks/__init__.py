"""Downstream tasks: file readers, task registry (GLUE, generic, CoNLL) and metrics."""

from bert_keras.tasks.data import Columns, DataError, Example, TokenExample
from bert_keras.tasks.registry import TASK_NAMES, TaskSpec, compute_metrics, get_task

__all__ = [
    "TASK_NAMES",
    "Columns",
    "DataError",
    "Example",
    "TaskSpec",
    "TokenExample",
    "compute_metrics",
    "get_task",
]

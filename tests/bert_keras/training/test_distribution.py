import json

import pytest
import tensorflow as tf

from bert_keras.training import distribution


def test_one_device_and_mirrored():
    assert isinstance(distribution.create_strategy("one_device"), tf.distribute.OneDeviceStrategy)
    mirrored = distribution.create_strategy("mirrored")
    assert mirrored.num_replicas_in_sync == len(tf.config.list_logical_devices("CPU"))
    assert distribution.is_chief(mirrored)


def test_errors_name_the_flag(monkeypatch):
    with pytest.raises(ValueError, match="--strategy='gpu'"):
        distribution.create_strategy("gpu")
    with pytest.raises(ValueError, match="needs --tpu"):
        distribution.create_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribution.create_strategy("multi_worker_mirrored")


@pytest.mark.parametrize(
    ("cluster", "task", "chief"),
    [
        ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 0}, True),
        ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 1}, False),
        ({"chief": ["c:0"], "worker": ["a:1"]}, {"type": "chief", "index": 0}, True),
        ({"chief": ["c:0"], "worker": ["a:1"]}, {"type": "worker", "index": 0}, False),
    ],
)
def test_chief_from_tf_config(monkeypatch, cluster, task, chief):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()

    class FakeStrategy:  # The resolver is all is_chief reads; no cluster is started.
        cluster_resolver = resolver

    assert distribution.task_info(FakeStrategy()) == (task["type"], task["index"])
    assert distribution.is_chief(FakeStrategy()) is chief

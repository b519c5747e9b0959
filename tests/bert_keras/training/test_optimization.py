import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_keras.training import optimization


def test_schedule_is_gb_warmup_then_linear_decay():
    schedule = optimization.WarmupLinearDecay(1e-3, num_train_steps=100, num_warmup_steps=10)
    lrs = np.array([float(schedule(step)) for step in range(0, 101)])
    np.testing.assert_allclose(lrs[:10], 1e-3 * np.arange(10) / 10, rtol=1e-6)
    np.testing.assert_allclose(
        lrs[10:], 1e-3 * (1 - np.arange(10, 101) / 100), rtol=1e-5, atol=1e-12
    )
    assert lrs[100] == 0.0


def test_schedule_rejects_bad_steps_and_round_trips():
    with pytest.raises(ValueError, match="--num_warmup_steps"):
        optimization.WarmupLinearDecay(1e-3, num_train_steps=5, num_warmup_steps=6)
    schedule = optimization.WarmupLinearDecay(2e-4, num_train_steps=7, num_warmup_steps=3)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert restored.get_config() == schedule.get_config()


def _variables():
    kernel = keras.Variable(np.ones((3, 2), np.float32), name="kernel")
    bias = keras.Variable(np.ones((2,), np.float32), name="bias")
    return kernel, bias


@pytest.mark.parametrize("name", optimization.OPTIMIZERS)
def test_weight_decay_skips_one_dimensional_variables(name):
    kernel, bias = _variables()
    optimizer = optimization.create_optimizer(
        name, 0.1, [kernel, bias], weight_decay=0.5, loss_scaling=False
    )
    # Zero gradient: Adam's update is 0, so any change is the weight decay.
    optimizer.apply([tf.zeros((3, 2)), tf.zeros((2,))], [kernel, bias])
    np.testing.assert_allclose(bias.numpy(), 1.0)
    assert np.all(kernel.numpy() < 1.0)


def test_lamb_trust_ratio_skips_excluded_variables():
    kernel = keras.Variable(np.arange(1, 7, dtype=np.float32).reshape(3, 2), name="kernel")
    bias = keras.Variable(np.ones((2,), np.float32), name="bias")
    optimizer = optimization.create_optimizer("lamb", 0.1, [kernel, bias], weight_decay=0.0)
    grad_k = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    grad_b = tf.constant([100.0, -100.0])
    optimizer.apply([grad_k, grad_b], [kernel, bias])
    # Adam's first update is sign(g) (up to epsilon). Bias: no trust ratio, so lr * sign(g).
    np.testing.assert_allclose(bias.numpy(), [0.9, 1.1], rtol=1e-4)
    # Kernel: update ones(3, 2) scaled by ||w|| / ||u|| = sqrt(91 / 6).
    ratio = np.sqrt(91.0 / 6.0)
    np.testing.assert_allclose(
        kernel.numpy(), np.arange(1, 7).reshape(3, 2) - 0.1 * ratio, rtol=1e-4
    )


def test_loss_scaling_wraps_and_skips_non_finite_steps():
    kernel, bias = _variables()
    optimizer = optimization.create_optimizer("adamw", 0.1, [kernel, bias], loss_scaling=True)
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    scale = float(optimizer.dynamic_scale.numpy())
    optimizer.apply([tf.fill((3, 2), np.inf), tf.zeros((2,))], [kernel, bias])
    np.testing.assert_allclose(kernel.numpy(), 1.0)
    assert float(optimizer.dynamic_scale.numpy()) == scale / 2
    assert optimization.inner_optimizer(optimizer).iterations.numpy() == 0


def test_unknown_optimizer_is_an_error():
    with pytest.raises(ValueError, match="--optimizer"):
        optimization.create_optimizer("sgd", 0.1, list(_variables()))

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_keras.layers import get_activation
from bert_keras.layers.activations import gelu


def test_gelu_values_and_gradient_match_keras_exact_gelu():
    x = tf.constant(np.random.default_rng(0).normal(scale=4.0, size=(500,)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = gelu(x)
        reference = keras.activations.gelu(x, approximate=False)
    np.testing.assert_array_equal(ours, reference)
    np.testing.assert_allclose(tape.gradient(ours, x), tape.gradient(reference, x), atol=1e-6)
    assert get_activation("gelu") is gelu
    assert keras.activations.deserialize(keras.activations.serialize(gelu)) is gelu


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_gelu_keeps_half_dtypes(dtype):
    x = tf.cast(tf.linspace(-3.0, 3.0, 13), dtype)
    assert gelu(x).dtype == dtype
    np.testing.assert_allclose(
        tf.cast(gelu(x), "float32"),
        keras.activations.gelu(tf.cast(x, "float32"), approximate=False),
        atol=0.05,
    )

import keras
import numpy as np

from bert_keras.layers import BertTransformerLayer
from tests.bert_keras.models.model_test_utils import assert_config_complete


def non_default_layer():
    return BertTransformerLayer(
        intermediate_dim=20,
        num_heads=2,
        dropout=0.2,
        attention_dropout=0.3,
        hidden_act="gelu_new",
        layer_norm_epsilon=1e-6,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.05),
        bias_initializer="ones",
        normalize_first=True,
        name="block",
    )


def test_config_round_trip_and_separate_dropouts():
    layer = non_default_layer()
    assert_config_complete(layer)
    layer.build((2, 5, 8))
    assert layer._self_attention_layer._dropout == 0.3
    assert layer._self_attention_layer._dropout_layer.rate == 0.3
    assert layer._feedforward_dropout.rate == 0.2


def test_padding_mask_isolates_padded_keys():
    keras.utils.set_random_seed(0)
    layer = BertTransformerLayer(intermediate_dim=16, num_heads=2)
    x = np.random.default_rng(0).normal(size=(1, 6, 8)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 0, 0]], "int32")
    changed = x.copy()
    changed[:, 4:] = 100.0  # Values at padded positions must not reach real ones.
    out = np.asarray(layer(x, padding_mask=mask))
    out_changed = np.asarray(layer(changed, padding_mask=mask))
    np.testing.assert_allclose(out[:, :4], out_changed[:, :4], atol=1e-6)
    assert out.shape == (1, 6, 8)


def test_keras_save_and_reload(tmp_path):
    inputs = keras.Input((None, 8))
    mask = keras.Input((None,), dtype="int32")
    outputs = non_default_layer()(inputs, padding_mask=mask)
    model = keras.Model([inputs, mask], outputs)
    data = [np.ones((2, 5, 8), "float32"), np.array([[1] * 5, [1, 1, 0, 0, 0]], "int32")]
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(restored(data), model(data), atol=1e-6)
    restored_layer = restored.layers[-1]
    assert restored_layer.hidden_act == "gelu_new" and restored_layer.attention_dropout == 0.3

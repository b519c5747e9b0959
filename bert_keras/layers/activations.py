"""The feed-forward activations a BERT config can name (`hidden_act`)."""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras_hub.src.utils.keras_utils import gelu_approximate

# "gelu" is GB's exact form, x * Phi(x) with erf. The tanh approximation has the names
# Hugging Face gives it; keras-hub's BertBackbone uses the approximation.
_ACTIVATIONS: dict[str, Callable] = {
    "gelu": keras.activations.gelu,  # approximate=False by default: erf.
    "gelu_new": gelu_approximate,
    "gelu_approximate": gelu_approximate,
    "gelu_pytorch_tanh": gelu_approximate,
    "relu": keras.activations.relu,
    "tanh": keras.activations.tanh,
    "silu": keras.activations.silu,
    "swish": keras.activations.silu,
}


def get_activation(name: str) -> Callable:
    """Maps a config's `hidden_act` string to a Keras activation function."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"Unknown hidden_act {name!r}; choose one of {sorted(_ACTIVATIONS)}.")
    return _ACTIVATIONS[name]

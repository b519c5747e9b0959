"""Stable names for our models' variables in `tf.train.Checkpoint` files."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # The mixin goes in front of a keras.Model, whose method it extends.
    from keras import Model as _TrackableBase
else:
    _TrackableBase = object


class NamedCheckpointChildren(_TrackableBase):
    """Mixin for functional Keras models: checkpoint only the public attributes.

    A functional model also tracks its layers as `_operations/<index>`, an index that
    shifts whenever the graph changes (e.g. `trim_padding` on or off), and a restore that
    matches objects by that path could pair a checkpoint's layer with the wrong block.
    Public attribute names (`token_embedding`, `transformer_layer_3`, `mlm_head`, ...)
    stay put, so only those are written and matched.
    """

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        children = super()._trackable_children(save_type, **kwargs)
        if save_type != "checkpoint":
            return children
        return {name: child for name, child in children.items() if not name.startswith("_")}

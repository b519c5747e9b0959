"""`KerasExportModule`: a `tf.Module` holding Keras 3 models for `tf.saved_model.save` so that
TF Serving can run it.

Tracked as ordinary attributes of a `tf.Module`, Keras 3 layers put every weight in the
SavedModel twice: once as the Keras variable of the object graph (which the checkpoint
restores) and once as the `tf.Variable` the traced functions capture (which nothing
restores). `tf.saved_model.load` copes, but a session that runs the `signature_def`, as TF
Serving and `saved_model_cli run` do, fails with "Could not find variable ..."
(keras-team/keras#20095, tensorflow/serving#2250). Keras's own `ExportArchive` avoids it
the same way as this class: the Keras objects stay out of the object graph and the
`tf.Variable`s the functions read are tracked directly.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class KerasExportModule(tf.Module):
    """A `tf.Module` whose Keras attributes are held, not tracked; `save` tracks their
    variables as plain `tf.Variable`s and writes the SavedModel with `signatures()`."""

    def __setattr__(self, name, value):
        if isinstance(value, keras.Layer):  # Models and layers alike.
            object.__setattr__(self, name, value)
            keras_names = self.__dict__.setdefault("_keras_attribute_names", [])
            if name not in keras_names:
                keras_names.append(name)
            return
        super().__setattr__(name, value)

    def keras_variables(self) -> list[tf.Variable]:
        """The `tf.Variable`s under the Keras attributes, each once."""
        variables, seen = [], set()
        for name in self.__dict__.get("_keras_attribute_names", []):
            for variable in getattr(self, name).variables:
                tf_variable = variable.value  # The tf.Variable traced functions capture.
                if id(tf_variable) not in seen:
                    seen.add(id(tf_variable))
                    variables.append(tf_variable)
        return variables

    def signatures(self) -> dict:
        """Signature name -> function with an input signature; set by subclasses."""
        raise NotImplementedError

    def save(self, path: str) -> None:
        """Writes the SavedModel (with `signatures()`) to `path`."""
        self.exported_variables = self.keras_variables()
        tf.saved_model.save(self, path, signatures=self.signatures())

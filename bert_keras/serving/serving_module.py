"""`BertServingModule`: the signature set every exported model has.

Dimensions: B batch, T sequence.

| signature         | inputs                                                  |
|-------------------|---------------------------------------------------------|
| `serving_default` | raw text: `text` (B,) or `text_a`, `text_b` (B,) string |
|                   | (token tensors when the model has no preprocessor)      |
| `from_tokens`     | `input_word_ids`, `input_mask`, `input_type_ids` (B, T) int32 |
| `from_examples`   | `examples` (B,) string: serialized tf.Example, GB's feature names |

All three return the same named outputs (`outputs_from_tokens` of the subclass). The text
path tokenizes inside the graph with tensorflow-text ops, so the SavedModel needs only
`tensorflow` and `tensorflow_text` at load time (what TF Serving has).
"""

from __future__ import annotations

import tensorflow as tf

from bert_keras.serving import text_inputs, token_inputs
from bert_keras.serving.export_module import KerasExportModule


class BertServingModule(KerasExportModule):
    """Base of the exported modules; subclasses implement `outputs_from_tokens`.

    Args:
        preprocessor: a `BertTextPreprocessor` (text -> token inputs), or None for a
            model served on token tensors only.
        num_segments: 1 (single sentence: `text`) or 2 (pairs: `text_a`, `text_b`).
        max_seq_length: T of the tf.Example path (the text path packs to the preprocessor's).
        vocab_size, type_vocab_size, max_position_embeddings: the encoder's, to validate
            token requests.
    """

    def __init__(
        self,
        preprocessor,
        num_segments: int,
        max_seq_length: int,
        vocab_size: int,
        type_vocab_size: int,
        max_position_embeddings: int,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.preprocessor = preprocessor
        self.num_segments = int(num_segments)
        self.max_seq_length = int(max_seq_length)
        self._limits = dict(
            vocab_size=int(vocab_size),
            type_vocab_size=int(type_vocab_size),
            max_length=int(max_position_embeddings),
        )
        # No autograph: these functions have no Python control flow on tensors, and
        # converting the Keras call stack only slows tracing down.
        token_specs = token_inputs.token_input_specs()
        token_signature = [token_specs[name] for name in token_inputs.TOKEN_INPUT_NAMES]
        # The model, traced once; every signature calls this one graph function.
        self.model_outputs = tf.function(
            self._model_outputs, input_signature=token_signature, autograph=False
        )
        self.from_tokens = tf.function(
            self._from_tokens, input_signature=token_signature, autograph=False
        )
        self.from_examples = tf.function(
            self._from_examples,
            input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
            autograph=False,
        )
        self.from_text = None
        if preprocessor is not None:
            text_specs = list(text_inputs.text_input_specs(self.num_segments).values())
            text_fn = self._from_text if self.num_segments == 1 else self._from_text_pair
            self.from_text = tf.function(text_fn, input_signature=text_specs, autograph=False)

    # --- Implemented by subclasses ---------------------------------------------------------

    def outputs_from_tokens(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Token inputs, int32 (B, T) -> the named outputs (B, ...)."""
        raise NotImplementedError

    def tokens_from_text(self, texts: list[tf.Tensor]) -> dict[str, tf.Tensor]:
        """One or two (B,) string batches -> token inputs, int32 (B, max_seq_length)."""
        return text_inputs.preprocess_text(self.preprocessor, texts)

    # --- Signatures -------------------------------------------------------------------------

    def _model_outputs(self, input_word_ids, input_mask, input_type_ids):
        return self.outputs_from_tokens(
            {
                "input_word_ids": input_word_ids,
                "input_mask": input_mask,
                "input_type_ids": input_type_ids,
            }
        )

    def _from_tokens(self, input_word_ids, input_mask, input_type_ids):
        inputs = token_inputs.validate_token_inputs(
            {
                "input_word_ids": input_word_ids,
                "input_mask": input_mask,
                "input_type_ids": input_type_ids,
            },
            **self._limits,
        )
        return self.model_outputs(**inputs)

    def _from_examples(self, examples):
        inputs = token_inputs.parse_token_examples(examples, self.max_seq_length)
        inputs = token_inputs.validate_token_inputs(inputs, **self._limits)
        return self.model_outputs(**inputs)

    def _from_text(self, text):
        return self.model_outputs(**self.tokens_from_text([text]))

    def _from_text_pair(self, text_a, text_b):
        check = tf.debugging.assert_equal(
            tf.shape(text_a), tf.shape(text_b), message="text_a and text_b differ in batch size"
        )
        with tf.control_dependencies([check]):
            text_a = tf.identity(text_a)
        return self.model_outputs(**self.tokens_from_text([text_a, text_b]))

    def signatures(self) -> dict[str, tf.types.experimental.PolymorphicFunction]:
        """`serving_default` (text if there is a preprocessor, else tokens), `from_tokens`,
        `from_examples`."""
        signatures = {
            "from_tokens": self.from_tokens,
            "from_examples": self.from_examples,
        }
        default = self.from_text if self.from_text is not None else self.from_tokens
        signatures["serving_default"] = default
        return signatures

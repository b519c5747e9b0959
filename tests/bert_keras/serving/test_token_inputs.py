import numpy as np
import pytest
import tensorflow as tf

from bert_keras import records
from bert_keras.serving import token_inputs


def _example(**features):
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                name: tf.train.Feature(int64_list=tf.train.Int64List(value=values))
                for name, values in features.items()
            }
        )
    ).SerializeToString()


def test_parse_pads_cuts_and_implies_the_mask():
    serialized = tf.constant(
        [
            _example(input_ids=[2, 7, 8, 3], input_mask=[1, 1, 1, 1], segment_ids=[0, 0, 0, 0]),
            _example(input_ids=[2, 5, 6, 7, 8, 9, 3], segment_ids=[0, 0, 0, 1, 1, 1, 1]),
            _example(input_ids=[2, 3]),  # No mask, no segments: implied.
        ]
    )
    parsed = token_inputs.parse_token_examples(serialized, max_seq_length=5)
    np.testing.assert_array_equal(
        parsed["input_word_ids"], [[2, 7, 8, 3, 0], [2, 5, 6, 7, 8], [2, 3, 0, 0, 0]]
    )
    np.testing.assert_array_equal(
        parsed["input_mask"], [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    )
    np.testing.assert_array_equal(
        parsed["input_type_ids"], [[0, 0, 0, 0, 0], [0, 0, 0, 1, 1], [0, 0, 0, 0, 0]]
    )
    assert all(value.dtype == tf.int32 for value in parsed.values())


def test_parse_reads_the_pipeline_records():
    spec = records.RecordSpec(max_seq_length=6, max_predictions_per_seq=2)
    features = {
        records.INPUT_IDS: [2, 9, 4, 3, 0, 0],
        records.INPUT_MASK: [1, 1, 1, 1, 0, 0],
        records.SEGMENT_IDS: [0, 0, 1, 1, 0, 0],
        records.MASKED_LM_POSITIONS: [2, 0],
        records.MASKED_LM_IDS: [11, 0],
        records.MASKED_LM_WEIGHTS: [1.0, 0.0],
        records.NEXT_SENTENCE_LABELS: [0],
    }
    serialized = tf.constant([records.serialize_example(features, spec)])
    parsed = token_inputs.parse_token_examples(serialized, max_seq_length=6)
    np.testing.assert_array_equal(parsed["input_word_ids"][0], features[records.INPUT_IDS])
    np.testing.assert_array_equal(parsed["input_type_ids"][0], features[records.SEGMENT_IDS])


def test_parse_empty_batch():
    parsed = token_inputs.parse_token_examples(tf.zeros([0], tf.string), max_seq_length=4)
    assert parsed["input_word_ids"].shape == (0, 4)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"input_word_ids": [[2, 50, 3]]}, "vocab_size=20"),
        ({"input_word_ids": [[2, -1, 3]]}, "negative input_word_ids"),
        ({"input_type_ids": [[0, 2, 0]]}, "type_vocab_size=2"),
        ({"input_mask": [[1, 1]]}, "input_mask must have the shape"),
        ({"input_mask": [[0, 0, 0]]}, "every row of input_mask needs a 1"),
        (
            {name: [[1] * 9] for name in token_inputs.TOKEN_INPUT_NAMES},
            "longer than the model's 8 positions",
        ),
    ],
)
def test_validate_names_the_bad_input(change, message):
    inputs = {
        "input_word_ids": [[2, 5, 3]],
        "input_mask": [[1, 1, 1]],
        "input_type_ids": [[0, 0, 0]],
    }
    inputs.update(change)
    inputs = {k: tf.constant(v, tf.int32) for k, v in inputs.items()}
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        token_inputs.validate_token_inputs(inputs, vocab_size=20, type_vocab_size=2, max_length=8)

"""BertInputPacker and BertTextPreprocessor: layout, GB truncation, robustness, saving."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_keras.preprocessing import BertInputPacker, BertTextPreprocessor
from bert_keras.tokenization import RESERVED_TOKENS, BertWordPieceTokenizer
from tests.bert_keras import gb_reference

VOCAB = list(RESERVED_TOKENS) + ["the", "cat", "sat", "on", "mat", "a", "dog", "##s", ".", "?"]


def _ragged(rows):
    return (
        tf.ragged.constant(rows, dtype=tf.int32, ragged_rank=1)
        if rows
        else (tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros([0], tf.int64)))
    )


def test_pair_layout():
    packer = BertInputPacker(10)
    out = packer([_ragged([[10, 11, 12]]), _ragged([[20, 21]])])
    np.testing.assert_array_equal(out["input_word_ids"], [[2, 10, 11, 12, 3, 20, 21, 3, 0, 0]])
    np.testing.assert_array_equal(out["input_type_ids"], [[0, 0, 0, 0, 0, 1, 1, 1, 0, 0]])
    np.testing.assert_array_equal(out["input_mask"], [[1, 1, 1, 1, 1, 1, 1, 1, 0, 0]])
    for value in out.values():
        assert value.dtype == tf.int32 and value.shape == (1, 10)


def test_single_segment_and_word_level_input():
    packer = BertInputPacker(6)
    words = tf.ragged.constant([[[10, 11], [12]], [[13]]], dtype=tf.int32)  # (B, (W), (P))
    out = packer([words])
    np.testing.assert_array_equal(
        out["input_word_ids"], [[2, 10, 11, 12, 3, 0], [2, 13, 3, 0, 0, 0]]
    )
    np.testing.assert_array_equal(out["input_type_ids"], np.zeros((2, 6)))


@pytest.mark.parametrize("len_a, len_b", list(itertools.product([0, 1, 3, 7, 12], repeat=2)))
def test_round_robin_truncation_is_google_research_berts(len_a, len_b):
    max_seq_length = 11
    a, b = list(range(100, 100 + len_a)), list(range(200, 200 + len_b))
    out = BertInputPacker(max_seq_length)([_ragged([a]), _ragged([b])])
    gb_a, gb_b = list(a), list(b)
    gb_reference.truncate_seq_pair(gb_a, gb_b, max_seq_length - 3)
    want = [2, *gb_a, 3, *gb_b, 3]
    want += [0] * (max_seq_length - len(want))
    assert out["input_word_ids"].numpy()[0].tolist() == want


def test_waterfall_truncation_fills_first_segment_first():
    out = BertInputPacker(7, truncation="waterfall")([_ragged([[10] * 9]), _ragged([[20] * 9])])
    assert out["input_word_ids"].numpy()[0].tolist() == [2, 10, 10, 10, 10, 3, 3]


def test_zero_batch():
    out = BertInputPacker(8)([_ragged([]), _ragged([])])
    assert all(v.shape == (0, 8) for v in out.values())


def test_bad_arguments():
    with pytest.raises(ValueError, match="truncation"):
        BertInputPacker(8, truncation="left")
    with pytest.raises(ValueError, match="max_seq_length"):
        BertInputPacker(2)
    with pytest.raises(ValueError, match="1 or 2 segments"):
        BertInputPacker(8)([_ragged([[1]])] * 3)


def test_text_preprocessor_pairs_and_graph_mode():
    pre = BertTextPreprocessor.from_vocabulary(VOCAB, max_seq_length=12)
    a = tf.constant(["The cat sat.", "", b"\xff dogs?"])
    b = tf.constant(["A dog", "the mat", "on"])
    out = pre([a, b])
    tok = pre.tokenizer
    ids = [
        VOCAB.index(t) for t in ["[CLS]", "the", "cat", "sat", ".", "[SEP]", "a", "dog", "[SEP]"]
    ]
    assert out["input_word_ids"].numpy()[0].tolist() == ids + [0, 0, 0]
    assert out["input_word_ids"].numpy()[2].tolist()[:7] == [
        tok.cls_id, VOCAB.index("dog"), VOCAB.index("##s"), VOCAB.index("?"), tok.sep_id,
        VOCAB.index("on"), tok.sep_id,
    ]  # fmt: skip
    fn = tf.function(
        lambda x, y: pre([x, y]),
        input_signature=[tf.TensorSpec([None], tf.string)] * 2,
    )
    graph_out = fn(a, b)
    for key in out:
        np.testing.assert_array_equal(graph_out[key], out[key])
    single = pre(tf.constant(["the cat"]))
    assert single["input_word_ids"].numpy()[0].tolist()[:4] == [2, 5, 6, 3]


def test_packer_ids_from_tokenizer_with_other_layout():
    vocab = ["x", "y"] + list(reversed(RESERVED_TOKENS)) + ["cat"]
    tokenizer = BertWordPieceTokenizer(vocab)
    packer = BertInputPacker.from_tokenizer(tokenizer, 6)
    out = packer([tokenizer(tf.constant(["cat"]))])
    assert out["input_word_ids"].numpy()[0].tolist() == [
        tokenizer.cls_id, vocab.index("cat"), tokenizer.sep_id, tokenizer.pad_id,
        tokenizer.pad_id, tokenizer.pad_id,
    ]  # fmt: skip


def test_keras_save_and_reload(tmp_path):
    tokenizer = BertWordPieceTokenizer(VOCAB, lower_case=False, max_chars_per_word=9, name="tk")
    packer = BertInputPacker(
        9,
        start_of_sequence_id=3,
        end_of_segment_id=4,
        padding_id=1,
        truncation="waterfall",
        name="pk",
    )
    pre = BertTextPreprocessor(tokenizer, packer, name="pre")
    path = str(tmp_path / "pre.keras")
    keras.Sequential([pre]).save(path)
    restored = keras.models.load_model(path).layers[0]
    assert isinstance(restored, BertTextPreprocessor)
    assert restored.get_config() == pre.get_config()
    assert restored.packer.get_config() == packer.get_config()
    texts = [tf.constant(["The cat sat on the mat", "dogs"]), tf.constant(["a dog", "Cat"])]
    want, got = pre(texts), restored(texts)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])

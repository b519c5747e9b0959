"""BertWordPieceTokenizer: same ids as google-research/bert and Hugging Face, robust, saveable."""

from __future__ import annotations

import collections
import random
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from tokenizers import BertWordPieceTokenizer as HFBertWordPieceTokenizer

from bert_keras.tokenization import (
    RESERVED_TOKENS,
    BertWordPieceTokenizer,
    load_vocab,
    normalize_text,
)
from tests.bert_keras import gb_reference

# Text on which tf-text's own normalisation, or a naive one, differs from GB's.
TRICKY = [
    "Straße STRASSE strasse",
    "½ and ¼ of ﬁve ﬂoors, the ﬁrst",
    "ΟΔΟΣ ΣΟΦΙΑΣ σοφίας. ΆΣΟΣ",
    "naïve café´s résumé Ångström",
    "e\u0301 combining: a\u0308 o\u0302 \u0301alone",
    "中文字符和English混合。日本語のテキスト 한국어",
    "control\x00chars\x01here\x7f and\u200bzero\ufeffwidth\ufffd",
    "tabs\tnew\nlines\r\nand\u00a0nbsp\u3000ideographic\u2003em",
    "line\u2028separator\u2029paragraph \x0bvt \x0cff \x85nel",
    "emoji 😀👍🏽 flags 🇫🇷 and ❤️ love",
    "mixed!!punctuation??--(yes)[no]{maybe}<tag> «quotes» „low“ ¿qué? ¡sí!",
    "UNaffable unaffable Unaffable's jumping jumped",
    "a" * 100 + " " + "b" * 101 + " " + "é" * 101 + " ok",
    "Κ" * 60 + " greek sixty",
    "",
    "   ",
    "İstanbul ǅungla ﬀ ŉ",
    "\u1fef varia and \u037e greek question",
    "x@y.com https://example.org/a_b?c=d&e=f#frag 3.14 1,000",
    "12:30pm — en–dash … ellipsis",
]


def _build_vocab(texts: list[str]) -> list[str]:
    """A vocab from the texts: whole words, plus prefixes/suffixes so words split in pieces."""
    counts: collections.Counter[str] = collections.Counter()
    for text in texts:
        for lower in (True, False):
            counts.update(gb_reference.basic_tokenize(text, lower))
    vocab = list(RESERVED_TOKENS)
    for word, _ in counts.most_common():
        if len(word) > 100:
            continue
        if len(word) > 6 and word.isalpha():  # Force a split: prefix + ## suffix pieces.
            vocab += [word[:4], "##" + word[4:6], "##" + word[6:]]
        else:
            vocab.append(word)
    vocab += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"] + ["a", "b", "x", "é"]
    vocab += ["ss", "##e", "un", "##aff", "##able", "he"]
    return list(dict.fromkeys(vocab))


VOCAB = _build_vocab(TRICKY)


@pytest.fixture(scope="module")
def uncased():
    return BertWordPieceTokenizer(VOCAB, lower_case=True)


@pytest.fixture(scope="module")
def cased():
    return BertWordPieceTokenizer(VOCAB, lower_case=False)


def _hf(lower_case: bool) -> HFBertWordPieceTokenizer:
    return HFBertWordPieceTokenizer(
        vocab={t: i for i, t in enumerate(VOCAB)},
        clean_text=True,
        handle_chinese_chars=True,
        strip_accents=lower_case,
        lowercase=lower_case,
    )


def _hf_agrees_with_gb(text: str) -> bool:
    # Hugging Face lower-cases character by character: no Greek final sigma (GB, via
    # Python's str.lower(), has it). Everything else in TRICKY agrees.
    return "Σ" not in text


@pytest.mark.parametrize("lower_case", [True, False])
def test_matches_google_research_bert(lower_case, uncased, cased):
    tokenizer = uncased if lower_case else cased
    got = tokenizer(tf.constant(TRICKY)).to_list()
    for text, ids in zip(TRICKY, got, strict=True):
        assert ids == gb_reference.tokenize(text, VOCAB, lower_case), text


@pytest.mark.parametrize("lower_case", [True, False])
def test_matches_hugging_face(lower_case, uncased, cased):
    tokenizer = uncased if lower_case else cased
    hf = _hf(lower_case)
    texts = [t for t in TRICKY if _hf_agrees_with_gb(t)]
    got = tokenizer(tf.constant(texts)).to_list()
    for text, ids in zip(texts, got, strict=True):
        assert ids == hf.encode(text, add_special_tokens=False).ids, text
    # The vocab gives real coverage: words, ## pieces and [UNK] all occur.
    flat = [VOCAB[i] for ids in got for i in ids]
    assert "[UNK]" in flat and any(t.startswith("##") for t in flat) and len(set(flat)) > 50


def test_final_sigma_follows_google_research_bert(uncased):
    ids = uncased(tf.constant(["ΟΔΟΣ ΣΟΦΙΑΣ"])).to_list()[0]
    assert uncased.ids_to_tokens(ids) == ["οδος", "σοφιας"]


def test_random_text_matches_reference(uncased, cased):
    alphabet = list("abcdeABCDE  .,!-'ßﬁ½´\t\n") + [
        "\x00", "\x07", "\u200b", "\ufffd", "é", "É", "\u0301", "Σ", "σ", "中", "文",
        "😀", "\u3000", "\u00a0", "ǅ", "İ", "—", "«", "\u2028",
    ]  # fmt: skip
    rng = random.Random(7)
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(300)]
    for tokenizer, lower in ((uncased, True), (cased, False)):
        got = tokenizer(tf.constant(texts)).to_list()
        want = [gb_reference.tokenize(t, VOCAB, lower) for t in texts]
        mismatches = [(t, g, w) for t, g, w in zip(texts, got, want, strict=True) if g != w]
        assert not mismatches, mismatches[:3]


def test_word_length_limit(uncased):
    assert uncased.max_chars_per_word == 100
    ok, long = "a" * 100, "a" * 101
    ids = uncased(tf.constant([ok, long, "é" * 101, "Κ" * 60])).to_list()
    assert uncased.unk_id not in ids[0]
    assert ids[1] == [uncased.unk_id]
    assert ids[2] == [uncased.unk_id]
    assert uncased.unk_id not in ids[3]  # 60 chars, 120 bytes: under the limit.
    # Alone in a batch, each line takes the path its own length picks (the limit counts
    # characters, not bytes).
    for text, want in [
        ("Κ" * 60, ids[3]),
        ("x " + "Κ" * 100, None),
        ("Κ" * 101, [uncased.unk_id]),
        ("é" * 101, [uncased.unk_id]),
        ("b " + long + " c", None),
    ]:
        got = uncased(tf.constant([text])).to_list()[0]
        assert got == (want or gb_reference.tokenize(text, VOCAB, True, 100)), text
    limit_200 = BertWordPieceTokenizer(VOCAB, max_chars_per_word=200)
    assert limit_200(tf.constant([long])).to_list()[0] == gb_reference.tokenize(
        long, VOCAB, True, 200
    )


def test_tokenize_words_agrees_with_call(uncased):
    words = uncased.tokenize_words(tf.constant(TRICKY))
    assert words.shape.rank == 3 and words.dtype == tf.int32
    for text, row in zip(TRICKY, words.to_list(), strict=True):
        assert row == gb_reference.tokenize_words(text, VOCAB), text


def test_offsets_point_into_original(uncased, cased):
    for tokenizer in (uncased, cased):
        ids, starts, ends = tokenizer.tokenize_with_offsets(tf.constant(TRICKY))
        assert ids.to_list() == tokenizer(tf.constant(TRICKY)).to_list()
        for text, row, s_row, e_row in zip(
            TRICKY, ids.to_list(), starts.to_list(), ends.to_list(), strict=True
        ):
            raw = text.encode("utf-8")
            for token_id, s, e in zip(row, s_row, e_row, strict=True):
                assert 0 <= s < e <= len(raw), (text, s, e)
                token = tokenizer.vocabulary[token_id]
                piece = raw[s:e].decode("utf-8", errors="replace")
                if token != "[UNK]" and piece.isascii() and piece.isalnum():
                    expected = piece.lower() if tokenizer.lower_case else piece
                    assert token.removeprefix("##") == expected, (text, token, piece)


def test_offsets_of_word_pieces_are_exact(uncased):
    text = "He said: unaffable, Straße!"
    ids, starts, ends = uncased.tokenize_with_offsets(tf.constant([text]))
    raw = text.encode()
    spans = [raw[s:e].decode() for s, e in zip(starts[0].numpy(), ends[0].numpy(), strict=True)]
    tokens = uncased.ids_to_tokens(ids[0].numpy().tolist())
    assert sum(t.startswith("##") for t in tokens) >= 3 and "[UNK]" not in tokens
    assert [s.lower() for s in spans] == [t.removeprefix("##") for t in tokens]


def test_robust_inputs(uncased):
    bad = [b"ab\xffcd \xe4 b \xc3", b"", b"\x00\x00", ("word " * 20000).encode(), b"\xed\xa0\x80"]
    ids = uncased(tf.constant(bad)).to_list()
    assert ids[0] == gb_reference.tokenize(bad[0].decode("utf-8", "ignore"), VOCAB)
    assert ids[1] == [] and ids[2] == []
    assert len(ids[3]) == 20000
    words = uncased.tokenize_words(tf.constant(bad))
    assert [sum(r, []) for r in words.to_list()] == ids
    off_ids, _, _ = uncased.tokenize_with_offsets(tf.constant(bad))
    assert off_ids.to_list() == ids
    empty = uncased(tf.constant([], dtype=tf.string))
    assert empty.shape[0] == 0 and empty.dtype == tf.int32
    assert uncased.tokenize_words(tf.constant([], dtype=tf.string)).shape[0] == 0
    assert uncased.tokenize_with_offsets(tf.constant([], dtype=tf.string))[0].shape[0] == 0
    assert uncased.encode_batch([]) == [] and uncased.encode_words_batch([]) == []


def test_graph_mode_and_tf_data(uncased):
    want = uncased(tf.constant(TRICKY)).to_list()
    fn = tf.function(uncased.call, input_signature=[tf.TensorSpec([None], tf.string)])
    assert fn(tf.constant(TRICKY)).to_list() == want
    ds = tf.data.Dataset.from_tensor_slices(TRICKY).batch(7).map(uncased)
    got = [row for batch in ds for row in batch.to_list()]
    assert got == want


def test_saved_model_round_trip(uncased, tmp_path):
    module = tf.Module()
    module.tokenizer = uncased
    module.tokenize = tf.function(
        lambda s: uncased(s).to_tensor(default_value=-1),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    tf.saved_model.save(module, str(tmp_path / "sm"))
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    got = loaded.tokenize(tf.constant(TRICKY)).numpy()
    want = uncased(tf.constant(TRICKY)).to_tensor(default_value=-1).numpy()
    np.testing.assert_array_equal(got, want)


def test_python_batch_entries(uncased):
    lines = TRICKY[:6]
    assert uncased.encode_batch(lines) == uncased(tf.constant(lines)).to_list()
    assert uncased.encode_words_batch(lines) == uncased.tokenize_words(tf.constant(lines)).to_list()
    # One trace for any batch size: the signature is fixed.
    uncased.encode_batch(["one"])
    uncased.encode_batch(["one", "two", "three"])
    assert uncased._batch_fn("ids").experimental_get_tracing_count() == 1


def test_detokenize(uncased):
    ids = uncased(tf.constant(["He said: unaffable!"]))
    assert uncased.detokenize(ids).numpy().tolist() == [b"he said : unaffable !"]


def test_special_ids(uncased):
    assert [uncased.pad_id, uncased.unk_id, uncased.cls_id, uncased.sep_id, uncased.mask_id] == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert uncased.vocab_size == len(VOCAB) and uncased.vocabulary == VOCAB


def test_keras_save_and_reload(tmp_path):
    tokenizer = BertWordPieceTokenizer(
        VOCAB, lower_case=False, max_chars_per_word=7, name="my_tokenizer"
    )
    model = keras.Sequential([tokenizer])
    path = str(tmp_path / "tok.keras")
    model.save(path)
    restored = keras.models.load_model(path).layers[0]
    assert isinstance(restored, BertWordPieceTokenizer)
    assert restored.get_config() == tokenizer.get_config()
    texts = tf.constant(["Straße unaffable abcdefgh", "ΟΔΟΣ"])
    assert restored(texts).to_list() == tokenizer(texts).to_list()
    assert tokenizer(texts).to_list()[0][-1] == tokenizer.unk_id  # 8 chars > 7.


def test_vocab_from_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    assert load_vocab(str(path)) == VOCAB
    tokenizer = BertWordPieceTokenizer(str(path))
    assert tokenizer.vocabulary == VOCAB


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        ("", "is empty"),
        ("[PAD]\n[UNK]\n[CLS]\n[SEP]\nword\n", "lacks the reserved token"),
        ("[PAD]\n[UNK]\n\n[CLS]\n", ":3: empty token"),
        ("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n[UNK]\n", ":6: token '[UNK]' already"),
    ],
)
def test_bad_vocab_files(tmp_path, content, message):
    path = tmp_path / "vocab.txt"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        load_vocab(str(path))
    assert str(path) in str(info.value)


def test_normalize_text_matches_reference():
    # Punctuation is split later, by the tokenizer: GB's cased split of our normalised text
    # (no further lower-casing) must give GB's uncased words.
    got = normalize_text(tf.constant(TRICKY), lower_case=True).numpy()
    for text, norm in zip(TRICKY, got, strict=True):
        assert gb_reference.basic_tokenize(norm.decode(), False) == gb_reference.basic_tokenize(
            text, True
        ), text

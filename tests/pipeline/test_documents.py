"""Reading documents (bad input included) and batched tokenization."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from bert_keras.tokenization import BertWordPieceTokenizer
from pipeline.documents import (
    CommonDirectoryFn,
    DocumentLines,
    ReadStats,
    ReadTokenizedDocuments,
    TokenizeDocumentsFn,
    TokenizeStats,
    expand_input_patterns,
    source_name,
    split_documents,
    tokenize_documents,
)
from tests.pipeline.pipeline_test_util import word_vocab, write_text, write_vocab

TRICKY_LINES = [
    "Straße STRASSE naïve café´s Ångström ½ ﬁve",
    "ΟΔΟΣ ΣΟΦΙΑΣ σοφίας. 中文字符和English混合。",
    "control\x00chars\x01here\x7f and\u200bzero\ufeffwidth\ufffd",
    "unaffable hello world. w1 W2 w3!!",
    "a" * 150 + " w4",
]


def test_split_documents_blank_lines_crlf_and_bad_bytes():
    raw = [
        b"first sentence\r\n",
        b"second \xff\xfe sentence\r\n",
        b"   \t \r\n",  # whitespace-only: a document break
        b"\r\n",
        b"nul\x00inside\n",
        b"\n",
        b"\n",
        b"last without newline",
    ]
    stats = ReadStats()
    docs = list(split_documents(raw, "f.txt", stats))
    assert [d.doc_id for d in docs] == ["f.txt:0", "f.txt:1", "f.txt:2"]
    assert docs[0].lines == ["first sentence", "second \ufffd\ufffd sentence"]
    assert docs[1].lines == ["nul\x00inside"]
    assert docs[2].lines == ["last without newline"]
    assert (stats.lines, stats.lines_invalid_utf8, stats.documents) == (8, 1, 3)


def test_split_documents_empty_input():
    stats = ReadStats()
    assert list(split_documents([b"", b"  \n", b"\n"], "e.txt", stats)) == []
    assert stats.documents == 0


def test_tokenize_documents_drops_and_counts_empty_sentences_and_documents():
    vocab = {"a": 1, "b": 2, "c": 3}
    calls = []

    def encode(lines):
        calls.append(len(lines))
        rows = [[vocab[w] for w in line.split() if w in vocab] for line in lines]
        splits = np.cumsum([0] + [len(r) for r in rows])
        return np.array([i for r in rows for i in r], np.int32), None, splits

    docs = [
        DocumentLines("d:0", ["a b", "zzz", "c"]),
        DocumentLines("d:1", ["zzz", "yyy"]),
        DocumentLines("d:2", ["c c c"]),
    ]
    stats = TokenizeStats()
    out = tokenize_documents(docs, encode, stats, max_lines_per_call=2)
    assert calls == [2, 2, 2]
    assert [d.doc_id for d in out] == ["d:0", "d:2"]
    assert out[0].token_ids.tolist() == [1, 2, 3]
    assert out[0].sentence_starts.tolist() == [0, 2, 3]
    assert out[1].token_ids.tolist() == [3, 3, 3]
    assert out[1].sentence_starts.tolist() == [0, 3]
    assert (stats.sentences, stats.sentences_without_tokens, stats.documents_without_tokens) == (
        3,
        3,
        1,
    )


@pytest.fixture(scope="module")
def vocab_path(tmp_path_factory):
    words = ["straße", "strasse", "naive", "cafe", "´", "s", "angstrom", "½", "ﬁve", "οδος"]
    words += ["σοφιας", "中", "文", "english", "。", "control", "chars", "here", "and"]
    words += ["zero", "width", "!"]
    return write_vocab(str(tmp_path_factory.mktemp("vocab") / "vocab.txt"), word_vocab() + words)


@pytest.mark.parametrize("whole_word", [False, True])
def test_pipeline_ids_equal_the_tokenizers(vocab_path, whole_word):
    fn = TokenizeDocumentsFn(vocab_path, do_lower_case=True, do_whole_word_mask=whole_word)
    fn.setup()
    docs = list(fn.process([DocumentLines("t:0", TRICKY_LINES)]))
    tokenizer = BertWordPieceTokenizer(vocab_path, lower_case=True)
    expected = [tokenizer(np.array([line])).to_list()[0] for line in TRICKY_LINES]
    assert len(docs) == 1
    assert docs[0].token_ids.tolist() == [i for ids in expected for i in ids]
    assert np.diff(docs[0].sentence_starts).tolist() == [len(ids) for ids in expected]
    unk = tokenizer.unk_id
    assert docs[0].token_ids.tolist().count(unk) < len(docs[0].token_ids) // 2
    if whole_word:
        # "unaffable" is one word of three pieces: un ##aff ##able.
        words = tokenizer.tokenize_words(np.array(TRICKY_LINES)).to_list()
        starts = [k == 0 for line in words for word in line for k in range(len(word))]
        assert docs[0].word_starts.tolist() == starts
    else:
        assert docs[0].word_starts is None


def test_unmatched_glob_names_the_pattern(tmp_path):
    write_text(str(tmp_path / "a.txt"), "x\n")
    assert expand_input_patterns(f"{tmp_path}/a.txt, {tmp_path}/*.txt") == [str(tmp_path / "a.txt")]
    with pytest.raises(
        ValueError, match=r"--input_file pattern '.*nothing\*\.txt' matches no file"
    ):
        expand_input_patterns(f"{tmp_path}/a.txt,{tmp_path}/nothing*.txt")


def test_read_tokenized_documents_transform(tmp_path, vocab_path):
    a = write_text(str(tmp_path / "a.txt"), "w1 w2\nw3\n\nw4 w5\n")
    b = write_text(str(tmp_path / "b.txt"), "w6\n\n\n   \n")
    empty = write_text(str(tmp_path / "empty.txt"), "")
    with BeamTestPipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        docs = (
            p
            | beam.Create([a, b, empty])
            | ReadTokenizedDocuments(vocab_path, do_lower_case=True, do_whole_word_mask=False)
            | beam.Map(lambda d: (d.doc_id, d.token_ids.tolist(), d.sentence_starts.tolist()))
        )
        w = {f"w{i}": 5 + i for i in range(10)}  # word_vocab(): reserved tokens, then w0, w1, ...
        assert_that(
            docs,
            equal_to(
                [
                    ("a.txt:0", [w["w1"], w["w2"], w["w3"]], [0, 2, 3]),
                    ("a.txt:1", [w["w4"], w["w5"]], [0, 2]),
                    ("b.txt:0", [w["w6"]], [0, 1]),
                ]
            ),
        )


@pytest.mark.parametrize(
    "paths, common",
    [
        (["/data/c/a.txt"], "/data/c"),
        (["/data/c/a.txt", "/data/c/d/b.txt", "/data/c/d/e/f.txt"], "/data/c"),
        (["gs://bucket/corpus/a.txt", "gs://bucket/corpus/b.txt"], "gs://bucket/corpus"),
        (["gs://bucket/a.txt", "/local/b.txt"], ""),
        (["a.txt", "b.txt"], ""),
    ],
)
def test_documents_are_named_below_the_inputs_common_directory(paths, common):
    with BeamTestPipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        found = p | beam.Create(paths) | beam.CombineGlobally(CommonDirectoryFn())
        assert_that(found, equal_to([common]))
    names = [source_name(path, common) for path in paths]
    assert len(set(names)) == len(paths)
    assert all(not name.startswith("/") for name in names) or not common
    assert source_name("/data/c/d/b.txt", "/data/c") == "d/b.txt"

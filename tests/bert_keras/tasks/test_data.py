"""Generic TSV/CSV/JSONL and CoNLL readers; bad input gives file:line errors or counted skips;
first-piece label alignment for token classification."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bert_keras.tasks import Columns, DataError, get_task
from bert_keras.tasks.data import (
    check_labels,
    label_list,
    read_conll_examples,
    read_delimited_examples,
    read_jsonl_examples,
)
from bert_keras.tasks.finetuning import IGNORE, load_splits, token_features
from bert_keras.tokenization import RESERVED_TOKENS, BertWordPieceTokenizer

COLUMNS = Columns("review", "title", label="stars", guid="id")


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_generic_tsv_csv_jsonl_read_the_same(tmp_path):
    tsv = _write(tmp_path / "a.tsv", 'id\ttitle\treview\tstars\n7\tOk\tGood, "fine"\t5\n')
    csv_ = _write(tmp_path / "a.csv", 'id,title,review,stars\n7,Ok,"Good, ""fine""",5\n')
    jsonl = _write(
        tmp_path / "a.jsonl", '{"id": 7, "title": "Ok", "review": "Good, \\"fine\\"", "stars": 5}\n'
    )
    for path in (tsv, csv_):
        examples, _ = read_delimited_examples(path, COLUMNS, has_header=True, with_labels=True)
        assert [(e.guid, e.text_a, e.text_b, e.label) for e in examples] == [
            ("7", 'Good, "fine"', "Ok", "5")
        ]
    examples, _ = read_jsonl_examples(jsonl, COLUMNS, with_labels=True)
    assert [(e.guid, e.text_a, e.text_b, e.label) for e in examples] == [
        ("7", 'Good, "fine"', "Ok", "5")
    ]


def test_generic_task_by_name(tmp_path):
    _write(tmp_path / "train.jsonl", '{"text": "a", "y": "pos"}\n{"text": "b", "y": "neg"}\n')
    _write(tmp_path / "dev.jsonl", '{"text": "c", "y": "pos"}\n')
    spec = get_task(
        "generic",  # = "classification"; pipeline.stdlib_task writes such files.
        train_file=str(tmp_path / "train.jsonl"),
        dev_file=str(tmp_path / "dev.jsonl"),
        columns=Columns("text", label="y"),
    )
    train, labels, devs, tests = load_splits(spec, False)
    assert labels == ["neg", "pos"] and len(devs[0].examples) == 1 and tests == []
    assert label_list([e for e in train], "x") == ["neg", "pos"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("id\ttitle\treview\tstars\n1\tt\tr\t5\n2\tt\tr\n", ":3: 3 fields, expected 4"),
        ("id\ttitle\treview\n1\tt\tr\n", ":1: no column 'stars' (label)"),
        ("id\ttitle\treview\tstars\n1\tt\tr\t \n", ":2: empty label"),
        ("", ": file is empty"),
        ("\n  \n", ": file is empty"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, content, message):
    path = _write(tmp_path / "bad.tsv", content)
    with pytest.raises(DataError, match=re.escape(path + message)):
        read_delimited_examples(path, COLUMNS, has_header=True, with_labels=True)


def test_bad_rows_skipped_and_counted(tmp_path):
    path = _write(
        tmp_path / "bad.tsv",
        "id\ttitle\treview\tstars\n1\tt\tr\t5\n2\tt\tr\n3\tt\tr\t\n4\tt\tr\t4\t!\n5\tt\tr\t1\n",
    )
    examples, stats = read_delimited_examples(
        path, COLUMNS, has_header=True, with_labels=True, skip_bad_lines=True
    )
    assert [e.guid for e in examples] == ["1", "5"]
    assert stats.skipped == {"wrong field count": 2, "empty label": 1}
    assert "skipped 1 empty label, 2 wrong field count" in stats.summary()


def test_jsonl_bad_lines(tmp_path):
    path = _write(tmp_path / "x.jsonl", '{"review": "a", "title": "b", "stars": 1}\n{oops\n[1]\n')
    with pytest.raises(DataError, match=re.escape(f"{path}:2: invalid JSON")):
        read_jsonl_examples(path, COLUMNS, with_labels=True)
    examples, stats = read_jsonl_examples(path, COLUMNS, with_labels=True, skip_bad_lines=True)
    assert len(examples) == 1 and stats.skipped == {"invalid JSON": 1, "not an object": 1}


def test_missing_and_undecodable_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_delimited_examples(
            str(tmp_path / "no.tsv"), COLUMNS, has_header=True, with_labels=True
        )
    path = tmp_path / "latin1.tsv"
    path.write_bytes(b"id\ttitle\treview\tstars\n1\tt\tcaf\xe9\t5\n")
    with pytest.raises(DataError, match=re.escape(f"{path}:2: not valid UTF-8")):
        read_delimited_examples(str(path), COLUMNS, has_header=True, with_labels=True)


def test_unknown_dev_label(tmp_path):
    path = _write(tmp_path / "dev.tsv", "id\ttitle\treview\tstars\n1\tt\tr\t5\n2\tt\tr\t9\n")
    examples, _ = read_delimited_examples(path, COLUMNS, has_header=True, with_labels=True)
    with pytest.raises(DataError, match=re.escape(f"{path}:3: label '9' is not in the training")):
        check_labels(examples, ["1", "5"], path, skip=False)
    kept, dropped = check_labels(examples, ["1", "5"], path, skip=True)
    assert [e.guid for e in kept] == ["1"] and dropped == 1


def test_all_rows_bad_is_an_error(tmp_path):
    path = _write(tmp_path / "x.tsv", "id\ttitle\treview\tstars\n1\tt\n")
    with pytest.raises(DataError, match=r"no examples \(1 rows skipped\)"):
        read_delimited_examples(
            path, COLUMNS, has_header=True, with_labels=True, skip_bad_lines=True
        )


CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def test_conll_reader(tmp_path):
    path = _write(tmp_path / "train.txt", CONLL)
    examples, _ = read_conll_examples(path)
    assert [e.words for e in examples] == [
        ("EU", "rejects", "German", "call", "."),
        ("Peter", "Blackburn"),
    ]
    assert examples[1].labels == ("B-PER", "I-PER")
    assert examples[1].source == f"{path}:9"
    assert label_list(examples, path) == ["B-MISC", "B-ORG", "B-PER", "I-PER", "O"]
    bad = _write(tmp_path / "bad.txt", "EU B-ORG\nrejects\n")
    with pytest.raises(DataError, match=re.escape(f"{bad}:2: a word and a label")):
        read_conll_examples(bad)
    test_examples, _ = read_conll_examples(bad, with_labels=False)
    assert test_examples[0].words == ("EU", "rejects") and test_examples[0].labels is None


def test_token_features_label_first_piece(tmp_path):
    vocab = list(RESERVED_TOKENS) + ["eu", "rej", "##ects", "german", "call", ".", "peter"]
    tokenizer = BertWordPieceTokenizer(vocab)
    examples, _ = read_conll_examples(_write(tmp_path / "t.txt", CONLL))
    labels = label_list(examples, "t")
    inputs, label_ids, weights, first, cut = token_features(examples, tokenizer, labels, 8)
    # [CLS] eu rej ##ects german call . [SEP]
    assert inputs["input_word_ids"][0].tolist() == [2, 5, 6, 7, 8, 9, 10, 3]
    assert first[0].tolist() == [1, 2, 4, 5, 6]
    o, org, misc = labels.index("O"), labels.index("B-ORG"), labels.index("B-MISC")
    assert label_ids[0].tolist() == [0, org, o, 0, misc, o, o, 0]
    assert weights[0].tolist() == [0, 1, 1, 0, 1, 1, 1, 0]
    # "Blackburn" is [UNK]; second sentence padded.
    assert inputs["input_word_ids"][1].tolist() == [2, 11, 1, 3, 0, 0, 0, 0]
    assert inputs["input_mask"][1].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert cut == 0
    # With room for [CLS] + 4 pieces + [SEP] the last two words of sentence 1 are cut.
    _, _, short_weights, short_first, short_cut = token_features(examples, tokenizer, labels, 6)
    assert short_first[0].tolist() == [1, 2, 4, -1, -1] and short_cut == 2
    assert np.sum(short_weights[0]) == 3
    assert IGNORE < 0

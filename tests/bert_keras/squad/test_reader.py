"""SQuAD JSON reading: layout, v2 fields, bad answers and passages counted, clear errors."""

import pytest

from bert_keras.squad.reader import gold_answers, read_squad
from bert_keras.tasks.data import DataError
from tests.bert_keras.squad.squad_test_util import qa, write_squad

CONTEXT = "Emile was born in Paris. Paris is a city near the river."


def test_v1_layout(tmp_path):
    path = write_squad(
        tmp_path / "train.json",
        [
            (CONTEXT, [qa("q1", "Where was he born?", [("Paris", 18)])]),
            ("It was built in 1990.", [qa("q2", "When?", [("1990", 16), ("in 1990", 13)])]),
        ],
    )
    examples, stats = read_squad(path)
    assert (stats.articles, stats.paragraphs, stats.questions) == (1, 2, 2)
    assert not stats.counts
    assert [e.qas_id for e in examples] == ["q1", "q2"]
    assert examples[0].context == CONTEXT and examples[0].title == "t"
    assert examples[0].context_index != examples[1].context_index
    assert examples[1].target.text == "1990" and examples[1].target.char_start == 16
    assert gold_answers(examples) == {"q1": ["Paris"], "q2": ["1990", "in 1990"]}
    assert "train.json: article 0, paragraph 1, question 0" in examples[1].source


def test_answer_start_mismatch_repaired_to_nearest_or_counted(tmp_path):
    path = write_squad(
        tmp_path / "bad.json",
        [
            (
                CONTEXT,
                [
                    qa("near_second", "?", [("Paris", 24)]),  # Off by one: second Paris is 25.
                    qa("near_first", "?", [("Paris", 2)]),
                    qa("absent", "?", [("London", 3), ("Paris", 18)]),
                    qa("none", "?", [("Rome", 0)]),
                ],
            )
        ],
    )
    examples, stats = read_squad(path)
    by_id = {e.qas_id: e for e in examples}
    assert by_id["near_second"].target.char_start == 25
    assert by_id["near_first"].target.char_start == 18
    assert by_id["absent"].answers[0].char_start == -1
    assert by_id["absent"].target.text == "Paris"  # The first answer with a position.
    assert by_id["none"].target is None
    assert by_id["none"].answers[0].text == "Rome"  # Kept for evaluation.
    assert stats.counts["answer_start_repaired"] == 2
    assert stats.counts["answer_not_in_passage"] == 2


def test_v2_fields_and_v1_reading_of_v2(tmp_path):
    paragraphs = [
        (
            CONTEXT,
            [
                qa("has", "Where?", [("Paris", 18)], is_impossible=False),
                qa("no", "Who built it?", [], is_impossible=True, plausible=[("Emile", 0)]),
            ],
        ),
        ("   ", [qa("empty", "What?", [], is_impossible=True)]),
    ]
    path = write_squad(tmp_path / "v2.json", paragraphs, version="v2.0")
    examples, stats = read_squad(path, version_2_with_negative=True)
    by_id = {e.qas_id: e for e in examples}
    assert not by_id["has"].is_impossible and by_id["no"].is_impossible
    assert by_id["no"].answers == [] and by_id["no"].plausible_answers[0].char_start == 0
    assert stats.counts["impossible"] == 2 and stats.counts["empty_passages"] == 1
    examples_v1, stats_v1 = read_squad(path, version_2_with_negative=False)
    assert [e.qas_id for e in examples_v1] == ["has"]
    assert stats_v1.counts["impossible_in_v1"] == 2


def test_structural_errors_name_file_and_place(tmp_path):
    with pytest.raises(DataError, match="nope.json: no such file"):
        read_squad(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [\n{"paragraphs": [}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.json:2: not valid JSON"):
        read_squad(str(bad))
    path = write_squad(tmp_path / "q.json", [(CONTEXT, [{"id": "x", "answers": []}])])
    with pytest.raises(
        DataError, match=r"q.json: article 0, paragraph 0, question 0: missing 'question'"
    ):
        read_squad(path)
    path = write_squad(tmp_path / "a.json", [(CONTEXT, [dict(qa("x", "?"), answers="Paris")])])
    with pytest.raises(DataError, match=r"question 0: 'answers' should be a list"):
        read_squad(path)
    bad.write_text('{"version": "1.1"}', encoding="utf-8")
    with pytest.raises(DataError, match="missing 'data'"):
        read_squad(str(bad))

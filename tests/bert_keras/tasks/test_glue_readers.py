"""Every GLUE reader on small files in that task's released layout (header, columns)."""

from __future__ import annotations

import pytest

from bert_keras.tasks import get_task
from bert_keras.tasks.finetuning import _Split, load_splits, write_predictions

_MNLI_TRAIN_HEAD = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2"
)


def _mnli_row(i, s1, s2, labels):
    parse = "( x )"
    return "\t".join(
        [str(i), "31193", f"{i}n", "government", parse, parse, parse, parse, s1, s2, *labels]
    )


# task -> {file: content}, (first train example (a, b, label)), labels, test ids, submission.
GLUE = {
    "cola": (
        {
            "train.tsv": "gj04\t1\t\tOur friends won't buy this analysis.\n"
            "gj04\t0\t*\tThey drank the pub.\n",
            "dev.tsv": "gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\n",
            "test.tsv": "index\tsentence\n0\tBill whistled past the house.\n1\tHe left.\n",
        },
        ("Our friends won't buy this analysis.", None, "1"),
        ["0", "1"],
        ["0", "1"],
        "CoLA.tsv",
    ),
    "sst-2": (
        {
            "train.tsv": "sentence\tlabel\nit 's a charming journey . \t1\nbad , bad . \t0\n",
            "dev.tsv": "sentence\tlabel\nunflinchingly bleak \t0\n",
            "test.tsv": "index\tsentence\n0\tuneasy mishmash of styles .\n",
        },
        ("it 's a charming journey . ", None, "1"),
        ["0", "1"],
        ["0"],
        "SST-2.tsv",
    ),
    "mrpc": (
        {
            "train.tsv": "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
            '1\t702876\t702977\tAmrozi accused his brother .\tReferring to him as " the '
            'witness " , Amrozi accused his brother .\n'
            "0\t2108705\t2108831\tYucaipa owned Dominick 's .\tYucaipa bought Dominick 's .\n",
            "dev.tsv": "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tHe said .\tHe told .\n",
            "test.tsv": "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
            "0\t1089874\t1089925\tPCCW 's chief quits .\tHe quits .\n",
        },
        (
            "Amrozi accused his brother .",
            'Referring to him as " the witness " , Amrozi accused his brother .',
            "1",
        ),
        ["0", "1"],
        ["0"],
        "MRPC.tsv",
    ),
    "sts-b": (
        {
            "train.tsv": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1"
            "\tsentence2\tscore\n0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\t"
            "A plane is taking off.\tAn air plane is taking off.\t5.000\n"
            "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man plays.\tA dog runs.\t"
            "0.500\n",
            "dev.tsv": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1"
            "\tsentence2\tscore\n0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA man"
            " with a hard hat is dancing.\tA man wearing a hard hat is dancing.\t5.000\n",
            "test.tsv": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1"
            "\tsentence2\n0\tmain-captions\tMSRvid\t2012test\t0024\tnone\tnone\tA girl is "
            "styling her hair.\tA girl is brushing her hair.\n",
        },
        ("A plane is taking off.", "An air plane is taking off.", "5.000"),
        [],
        ["0"],
        "STS-B.tsv",
    ),
    "qqp": (
        {
            "train.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
            "133273\t213221\t213222\tHow is the life of a math student?\tWhat is math?\t0\n"
            "402555\t536040\t536041\tHow do I control my anger?\tHow to stop anger?\t1\n",
            "dev.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
            "201359\t303345\t303346\tWhy are African-Americans so beautiful?\tWhy are hispanics"
            " so beautiful?\t0\n",
            "test.tsv": "id\tquestion1\tquestion2\n7\tWhy do rockets look white?\tWhy are "
            "rockets white?\n",
        },
        ("How is the life of a math student?", "What is math?", "0"),
        ["0", "1"],
        ["7"],
        "QQP.tsv",
    ),
    "mnli": (
        {
            "train.tsv": _MNLI_TRAIN_HEAD
            + "\tlabel1\tgold_label\n"
            + _mnli_row(
                0,
                "Conceptually cream skimming has two dimensions.",
                "Product and geography.",
                ["neutral", "neutral"],
            )
            + "\n"
            + _mnli_row(
                1,
                "you know during the season",
                "You lose the things.",
                ["entailment", "entailment"],
            )
            + "\n"
            + _mnli_row(
                2, "One of our number", "A member of my team", ["contradiction", "contradiction"]
            )
            + "\n",
            "dev_matched.tsv": _MNLI_TRAIN_HEAD
            + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n"
            + _mnli_row(
                0,
                "The new rights are nice enough",
                "Everyone really likes it",
                ["neutral"] * 5 + ["neutral"],
            )
            + "\n",
            "dev_mismatched.tsv": _MNLI_TRAIN_HEAD
            + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n"
            + _mnli_row(0, "Your contribution helped", "It helped", ["entailment"] * 6)
            + "\n",
            "test_matched.tsv": _MNLI_TRAIN_HEAD
            + "\n"
            + _mnli_row(0, "Hierbas is a name", "Hierbas is a drink", [])
            + "\n",
            "test_mismatched.tsv": _MNLI_TRAIN_HEAD
            + "\n"
            + _mnli_row(0, "What have you", "Nothing", [])
            + "\n",
        },
        ("Conceptually cream skimming has two dimensions.", "Product and geography.", "neutral"),
        ["contradiction", "entailment", "neutral"],
        ["0"],
        "MNLI-m.tsv",
    ),
    "qnli": (
        {
            "train.tsv": "index\tquestion\tsentence\tlabel\n0\tWhen did the third Digimon series "
            "begin?\tUnlike the two seasons before it, it was dark.\tnot_entailment\n"
            "1\tWhat is X?\tX is a letter.\tentailment\n",
            "dev.tsv": "index\tquestion\tsentence\tlabel\n0\tWhat came into force?\tThe law did."
            "\tentailment\n",
            "test.tsv": "index\tquestion\tsentence\n0\tWhat organization is devoted to Jihad?"
            "\tIt is the group.\n",
        },
        (
            "When did the third Digimon series begin?",
            "Unlike the two seasons before it, it was dark.",
            "not_entailment",
        ),
        ["entailment", "not_entailment"],
        ["0"],
        "QNLI.tsv",
    ),
    "rte": (
        {
            "train.tsv": "index\tsentence1\tsentence2\tlabel\n0\tNo Weapons of Mass Destruction "
            "Found in Iraq Yet.\tWeapons of Mass Destruction Found in Iraq.\tnot_entailment\n"
            "1\tA place of sorrow.\tA place.\tentailment\n",
            "dev.tsv": "index\tsentence1\tsentence2\tlabel\n0\tDana Reeve died.\tChristopher "
            "Reeve had an accident.\tnot_entailment\n",
            "test.tsv": "index\tsentence1\tsentence2\n0\tMangla was built in 1967.\tMangla "
            "was built in 1967.\n",
        },
        (
            "No Weapons of Mass Destruction Found in Iraq Yet.",
            "Weapons of Mass Destruction Found in Iraq.",
            "not_entailment",
        ),
        ["entailment", "not_entailment"],
        ["0"],
        "RTE.tsv",
    ),
    "wnli": (
        {
            "train.tsv": "index\tsentence1\tsentence2\tlabel\n0\tI stuck a pin through a carrot."
            " When I pulled the pin out, it had a hole.\tThe carrot had a hole.\t1\n"
            "1\tJohn couldn't see the stage.\tJohn is short.\t0\n",
            "dev.tsv": "index\tsentence1\tsentence2\tlabel\n0\tThe drain is clogged.\tThe hair "
            "is clogged.\t0\n",
            "test.tsv": "index\tsentence1\tsentence2\n0\tMaude and Dora had seen the trains."
            "\tHorses had seen the trains.\n",
        },
        (
            "I stuck a pin through a carrot. When I pulled the pin out, it had a hole.",
            "The carrot had a hole.",
            "1",
        ),
        ["0", "1"],
        ["0"],
        "WNLI.tsv",
    ),
}


@pytest.mark.parametrize("name", sorted(GLUE))
def test_glue_reader(name, tmp_path):
    files, first, labels, test_ids, submission = GLUE[name]
    for file_name, content in files.items():
        (tmp_path / file_name).write_text(content, encoding="utf-8")
    spec = get_task(name.upper(), data_dir=str(tmp_path))
    train, got_labels, devs, tests = load_splits(spec, skip_bad_lines=False)
    assert (train[0].text_a, train[0].text_b, train[0].label) == first
    assert train[0].source == f"{tmp_path / 'train.tsv'}:{1 if name == 'cola' else 2}"
    assert got_labels == labels
    assert devs and all(split.examples for split in devs)
    assert [e.guid for e in tests[0].examples] == test_ids
    assert all(e.label is None for split in tests for e in split.examples)
    if name == "mnli":
        assert [d.name for d in devs] == ["dev_matched", "dev_mismatched"]
        assert [t.submission for t in tests] == ["MNLI-m.tsv", "MNLI-mm.tsv"]
    # Submission layout: a header, then the test ids with a prediction each.
    split = tests[0]
    predictions = (
        [1.5] * len(split.examples) if spec.is_regression else [labels[0]] * len(split.examples)
    )
    path = write_predictions(spec, split, predictions, str(tmp_path / "out"))
    assert path.endswith(submission)
    lines = (tmp_path / "out" / submission).read_text().splitlines()
    assert lines[0] == "index\tprediction"
    want_value = "1.500" if spec.is_regression else labels[0]
    assert lines[1:] == [f"{i}\t{want_value}" for i in test_ids]


def test_split_without_id_column_numbers_rows(tmp_path):
    spec = get_task("sst-2", data_dir=str(tmp_path))
    from bert_keras.tasks.data import Example

    split = _Split("test", "x", [Example("x:2", "a"), Example("x:3", "b")], "SST-2.tsv")
    write_predictions(spec, split, ["0", "1"], str(tmp_path))
    assert (tmp_path / "SST-2.tsv").read_text() == "index\tprediction\n0\t0\n1\t1\n"

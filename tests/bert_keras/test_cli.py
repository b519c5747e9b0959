"""Entrypoints report a user's mistake in one line naming the file or flag, no traceback."""

import subprocess
import sys

import pytest

from bert_keras import cli


def test_user_error_exits_with_one_line(capsys):
    @cli.exit_on_user_error("prog")
    def main(argv):
        raise ValueError("--flag=3 is out of range")

    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == "prog: error: --flag=3 is out of range"


def test_bug_keeps_its_traceback():
    @cli.exit_on_user_error("prog")
    def main(argv):
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        main([])


@pytest.mark.slow
def test_finetune_names_the_file_and_line_of_a_bad_header(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("text\tlabel\nhello world\tx\n")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bert_keras.finetune",
            "--task=classification",
            f"--train_file={train}",
            f"--dev_file={train}",
            f"--vocab_file={vocab}",
            "--text_a_column=sentence",
            "--preset=tiny",
            f"--output_dir={tmp_path / 'out'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert f"finetune: error: {train}:1:" in result.stderr

"""build_vocab: Beam word counts with the tokenizer's normalisation, tf-text's learner."""

from __future__ import annotations

import numpy as np

from bert_keras.tokenization import RESERVED_TOKENS, BertWordPieceTokenizer, load_vocab
from pipeline import build_vocab
from tests.pipeline.pipeline_test_util import write_text

TEXT = "Café CAFÉ café Straße naïve, résumé! Unaffable jumping jumped jumps.\n"


def test_learn_vocab_reserved_first_and_sorted_input():
    counts = [("jumping", 30), ("jumped", 30), ("jumps", 30), ("cafe", 40)]
    vocab = build_vocab.learn_vocab(counts, 40)
    assert vocab[: len(RESERVED_TOKENS)] == list(RESERVED_TOKENS)
    assert build_vocab.learn_vocab(list(reversed(counts)), 40) == vocab
    assert "##s" in vocab or "jumps" in vocab


def test_build_vocab_job_uses_the_tokenizers_normalisation(tmp_path):
    corpus = write_text(str(tmp_path / "c.txt"), (TEXT + "\n") * 20 + "\xff\xfe bad bytes\n")
    output = str(tmp_path / "vocab.txt")
    vocab = build_vocab.run(
        [
            f"--input_file={corpus}",
            f"--output_file={output}",
            "--vocab_size=200",
            "--runner=DirectRunner",
        ]
    )
    assert vocab == load_vocab(output)
    assert vocab[:5] == list(RESERVED_TOKENS)
    # Lower-cased, accents stripped, punctuation split off, ß kept: GB's normalisation.
    for word in ("cafe", "straße", "naive", "resume", ",", "!"):
        assert word in vocab, word
    assert "Café" not in vocab and "café" not in vocab and "naïve," not in vocab
    tokenizer = BertWordPieceTokenizer(vocab)
    ids = tokenizer(np.array([TEXT])).to_list()[0]
    assert tokenizer.unk_id not in ids


def test_build_vocab_cased(tmp_path):
    corpus = write_text(str(tmp_path / "c.txt"), (TEXT + "\n") * 20)
    output = str(tmp_path / "vocab.txt")
    vocab = build_vocab.run(
        [
            f"--input_file={corpus}",
            f"--output_file={output}",
            "--vocab_size=200",
            "--nodo_lower_case",
            "--runner=DirectRunner",
        ]
    )
    assert "Café" in vocab and "CAFÉ" in vocab and "café" in vocab


def test_build_vocab_reads_jsonl_text_fields(tmp_path):
    import json

    lines = [json.dumps({"text": TEXT, "id": "keyname"}) for _ in range(20)] + ["{broken"]
    corpus = write_text(str(tmp_path / "c.jsonl"), "\n".join(lines) + "\n")
    vocab = build_vocab.run(
        [
            f"--input_file={corpus}",
            f"--output_file={tmp_path / 'vocab.txt'}",
            "--vocab_size=200",
            "--input_format=jsonl",
            "--runner=DirectRunner",
        ]
    )
    assert "cafe" in vocab
    assert not {"keyname", "text", "id", "broken"} & set(vocab)  # Only the text is counted.

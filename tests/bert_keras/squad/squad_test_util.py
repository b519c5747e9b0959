"""A tiny vocabulary and SQuAD-format files written by the tests."""

from __future__ import annotations

import json
import string

from bert_keras.tokenization import RESERVED_TOKENS, BertWordPieceTokenizer

WORDS = (
    "the a of in was is he she born where when who what did live city river cafe owner "
    "paris rome london emile 1990 year built bridge it by near ##s ##ed ##ing"
).split()
VOCAB = list(
    dict.fromkeys(
        list(RESERVED_TOKENS)
        + list(string.punctuation)
        + list(string.ascii_lowercase)
        + list(string.digits)
        + ["##" + c for c in string.ascii_lowercase + string.digits]
        + WORDS
    )
)


def tokenizer(lower_case: bool = True) -> BertWordPieceTokenizer:
    return BertWordPieceTokenizer(VOCAB, lower_case=lower_case)


def write_vocab(path) -> str:
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return str(path)


def qa(qas_id, question, answers=(), is_impossible=None, plausible=None) -> dict:
    """answers: (text, answer_start) pairs."""
    item = {
        "id": qas_id,
        "question": question,
        "answers": [{"text": t, "answer_start": s} for t, s in answers],
    }
    if is_impossible is not None:
        item["is_impossible"] = is_impossible
    if plausible is not None:
        item["plausible_answers"] = [{"text": t, "answer_start": s} for t, s in plausible]
    return item


def squad_json(paragraphs, version="1.1", title="t") -> dict:
    """paragraphs: (context, [qa dicts]) pairs, all in one article."""
    return {
        "version": version,
        "data": [{"title": title, "paragraphs": [{"context": c, "qas": q} for c, q in paragraphs]}],
    }


def write_squad(path, paragraphs, version="1.1") -> str:
    path.write_text(json.dumps(squad_json(paragraphs, version), ensure_ascii=False), "utf-8")
    return str(path)

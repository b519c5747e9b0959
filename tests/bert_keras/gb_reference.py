"""A plain-Python transcription of google-research/bert's tokenization rules, for tests.

Written from GB's documented algorithm (BasicTokenizer + WordpieceTokenizer), with
`max_chars_per_word` a parameter (GB: 200, Hugging Face: 100).
"""

from __future__ import annotations

import unicodedata

_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def is_cjk(char: str) -> bool:
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def is_whitespace(char: str) -> bool:
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def is_control(char: str) -> bool:
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def is_punctuation(char: str) -> bool:
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def basic_tokenize(text: str, lower_case: bool) -> list[str]:
    cleaned = []
    for char in text:
        if ord(char) in (0, 0xFFFD) or is_control(char):
            continue
        cleaned.append(" " if is_whitespace(char) else char)
    spaced = "".join(f" {c} " if is_cjk(c) else c for c in cleaned)
    words: list[str] = []
    for token in spaced.strip().split():
        if lower_case:
            token = token.lower()
            token = "".join(
                c for c in unicodedata.normalize("NFD", token) if unicodedata.category(c) != "Mn"
            )
        current: list[str] = []
        for char in token:
            if is_punctuation(char):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(char)
            else:
                current.append(char)
        if current:
            words.append("".join(current))
    return words


def wordpiece(word: str, vocab: set[str], max_chars_per_word: int) -> list[str]:
    if len(word) > max_chars_per_word:
        return ["[UNK]"]
    pieces = []
    start = 0
    while start < len(word):
        end = len(word)
        found = None
        while start < end:
            candidate = word[start:end] if start == 0 else "##" + word[start:end]
            if candidate in vocab:
                found = candidate
                break
            end -= 1
        if found is None:
            return ["[UNK]"]
        pieces.append(found)
        start = end
    return pieces


def tokenize_words(
    text: str, vocab: list[str], lower_case: bool = True, max_chars_per_word: int = 100
) -> list[list[int]]:
    index = {t: i for i, t in enumerate(vocab)}
    vocab_set = set(vocab)
    return [
        [index[p] for p in wordpiece(w, vocab_set, max_chars_per_word)]
        for w in basic_tokenize(text, lower_case)
    ]


def tokenize(
    text: str, vocab: list[str], lower_case: bool = True, max_chars_per_word: int = 100
) -> list[int]:
    return [i for w in tokenize_words(text, vocab, lower_case, max_chars_per_word) for i in w]


def truncate_seq_pair(a: list, b: list, max_num_tokens: int) -> None:
    """GB's run_classifier `_truncate_seq_pair`: pop from the end of the longer (B on ties)."""
    while len(a) + len(b) > max_num_tokens:
        if len(a) > len(b):
            a.pop()
        else:
            b.pop()

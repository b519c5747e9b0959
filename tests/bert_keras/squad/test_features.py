"""Window features as google-research/bert's run_squad.py builds them, aligned to the
original passage characters."""

import numpy as np
import pytest

from bert_keras.squad.features import (
    NO_SPAN,
    convert_examples_to_features,
    doc_windows,
    max_context_owner,
)
from bert_keras.squad.reader import parse_squad
from tests.bert_keras.squad.squad_test_util import qa, squad_json, tokenizer

# Accents and punctuation right next to answers; double spaces and a newline.
CONTEXT = (
    "Émile, the café owner, was born in (Paris), in 1990.  He lived near the river\n"
    "Seine; the city's bridge was built by Émile."
)


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


def _examples(paragraphs, v2=False):
    return parse_squad(squad_json(paragraphs), "mem.json", v2)[0]


def _span_text(features, examples, row, start, end):
    context = examples[features.example_index[row]].context
    return context[features.char_starts[row, start] : features.char_ends[row, end]]


def test_doc_windows_follow_gb_loop():
    assert doc_windows(10, 4, 3) == [(0, 4), (3, 4), (6, 4)]
    # A stride longer than the window steps by the window: no piece is skipped.
    assert doc_windows(10, 4, 5) == [(0, 4), (4, 4), (8, 2)]
    assert doc_windows(3, 4, 2) == [(0, 3)]
    assert doc_windows(0, 4, 2) == [(0, 0)]


def test_max_context_owner_hand_case():
    # Windows (0,4) and (2,4) over 6 pieces. Piece 2: min(2,1)=1 in w0, min(0,3)=0 in w1
    # -> w0. Piece 3: min(3,0)=0 in w0, min(1,2)=1 in w1 -> w1.
    owner = max_context_owner([(0, 4), (2, 4)], 6)
    assert owner.tolist() == [0, 0, 0, 1, 1, 1]
    # Equal scores: the first window wins (GB's strict `>`).
    assert max_context_owner([(0, 2), (1, 2)], 3).tolist() == [0, 0, 1]


def test_layout_alignment_and_targets(tok):
    examples = _examples(
        [
            (
                CONTEXT,
                [
                    qa("paris", "Where was he born?", [("Paris", CONTEXT.index("Paris"))]),
                    qa("emile", "Who built it?", [("Émile", CONTEXT.rindex("Émile"))]),
                    qa("cafe", "What did he own?", [("café owner", CONTEXT.index("café"))]),
                ],
            )
        ]
    )
    features, stats = convert_examples_to_features(
        examples, tok, max_seq_length=96, doc_stride=32, max_query_length=16, is_training=True
    )
    assert len(features) == 3 and stats.windows == 3 and not stats.counts  # One window each.
    question = tok.encode_batch(["Where was he born?"])[0]
    passage = tok.encode_batch([CONTEXT])[0]
    row = features.input_word_ids[0]
    n = 1 + len(question) + 1 + len(passage) + 1
    assert row[:n].tolist() == [tok.cls_id, *question, tok.sep_id, *passage, tok.sep_id]
    assert (row[n:] == tok.pad_id).all()
    assert features.input_mask[0].tolist() == [1] * n + [0] * (96 - n)
    assert features.input_type_ids[0].tolist() == [0] * (len(question) + 2) + [1] * (
        len(passage) + 1
    ) + [0] * (96 - n)
    # Only passage positions are aligned, all of them to original characters.
    offset = len(question) + 2
    assert (features.char_starts[0, :offset] == NO_SPAN).all()
    assert (features.char_starts[0, n - 1 :] == NO_SPAN).all()
    assert features.is_max_context[0, offset : n - 1].all()
    for i, want in enumerate(["Paris", "Émile", "café owner"]):
        s, e = features.start_positions[i], features.end_positions[i]
        assert _span_text(features, examples, i, s, e) == want
    # "(Paris)," -> the answer is the "paris" piece alone, without the brackets.
    assert tok.ids_to_tokens([features.input_word_ids[0, features.start_positions[0]]]) == ["paris"]


def test_answer_straddling_windows(tok):
    context = " ".join(["the city"] * 6 + ["near the river paris"] + ["the city"] * 6)
    start = context.index("river paris")
    examples = _examples([(context, [qa("q", "where", [("river paris", start)])])])
    features, stats = convert_examples_to_features(
        examples, tok, max_seq_length=12, doc_stride=3, max_query_length=4, is_training=True
    )
    labelled = [r for r in range(len(features)) if features.start_positions[r] > 0]
    assert labelled and stats.counts["windows_without_answer"] == len(features) - len(labelled)
    for r in labelled:
        s, e = features.start_positions[r], features.end_positions[r]
        assert _span_text(features, examples, r, s, e) == "river paris"
        assert tok.ids_to_tokens(features.input_word_ids[r, s : e + 1]) == ["river", "paris"]
    # A window holding "river" but not "paris" (or the reverse) is labelled [CLS].
    straddling = 0
    for r in range(len(features)):
        text = "".join(
            examples[0].context[a:b]
            for a, b in zip(features.char_starts[r], features.char_ends[r], strict=True)
            if a >= 0
        )
        if ("river" in text) != ("paris" in text):
            straddling += 1
            assert features.start_positions[r] == features.end_positions[r] == 0
    assert straddling >= 1
    # Every passage piece is max-context in exactly one window.
    owned = {}
    for r in range(len(features)):
        for p in np.nonzero(features.is_max_context[r])[0]:
            key = int(features.char_starts[r, p])
            owned[key] = owned.get(key, 0) + 1
    assert set(owned.values()) == {1}


def test_bad_input_counted_not_fatal(tok):
    long_question = "where " * 20
    examples = _examples(
        [
            (CONTEXT, [qa("long", long_question, [("Paris", CONTEXT.index("Paris"))])]),
            (CONTEXT, [qa("lost", "who?", [("Rome", 3)])]),  # Not in the passage.
            ("", [qa("empty", "what?", [])]),
        ]
    )
    train, stats = convert_examples_to_features(examples, tok, 40, 8, 6, is_training=True)
    assert stats.counts["questions_truncated"] == 1
    assert stats.counts["no_answer_position"] == 2  # "lost", and "empty" has no answer.
    assert stats.counts["empty_passages"] == 1
    assert set(train.example_index.tolist()) == {0}
    assert (train.input_type_ids[:, : 1 + 6 + 1] == 0).all()  # Question cut to 6 pieces.
    predict, stats = convert_examples_to_features(examples, tok, 40, 8, 6, is_training=False)
    assert set(predict.example_index.tolist()) == {0, 1, 2}
    assert stats.counts["empty_passages"] == 1
    empty_row = predict.example_index.tolist().index(2)
    assert (predict.char_starts[empty_row] == NO_SPAN).all()
    assert (predict.start_positions == 0).all()
    with pytest.raises(ValueError, match="--max_query_length=40"):
        convert_examples_to_features(examples, tok, 40, 8, 40, is_training=False)


def test_v2_unanswerable_windows_point_at_cls(tok):
    examples = _examples(
        [(CONTEXT, [qa("no", "Who?", [], is_impossible=True, plausible=[("Seine", 80)])])],
        v2=True,
    )
    features, stats = convert_examples_to_features(examples, tok, 24, 6, 4, is_training=True)
    assert len(features) > 1
    assert (features.start_positions == 0).all() and (features.end_positions == 0).all()
    assert "windows_without_answer" not in stats.counts


def _gb_answer_span(context, text, answer_start, tok):
    """google-research/bert's run_squad.py, transcribed: whitespace words, each word's
    pieces, the answer's word span in pieces, then `_improve_answer_span`."""
    words, char_to_word, after_space = [], [], True
    for c in context:
        if c in " \t\r\n" or ord(c) == 0x202F:
            after_space = True
        else:
            if after_space:
                words.append(c)
            else:
                words[-1] += c
            after_space = False
        char_to_word.append(len(words) - 1)
    first_word = char_to_word[answer_start]
    last_word = char_to_word[answer_start + len(text) - 1]
    pieces, word_start = [], []
    for word_pieces in tok.encode_batch(words):
        word_start.append(len(pieces))
        pieces.extend(word_pieces)
    start = word_start[first_word]
    end = word_start[last_word + 1] - 1 if last_word < len(words) - 1 else len(pieces) - 1
    wanted = tok.encode_batch([text])[0]
    for s in range(start, end + 1):
        for e in range(end, s - 1, -1):
            if pieces[s : e + 1] == wanted:
                return pieces, (s, e)
    return pieces, (start, end)


def test_targets_equal_gb_run_squad(tok):
    answers = ["Émile", "café owner", "Paris", "1990", "near the river", "river\nSeine;", "city's"]
    examples = _examples(
        [(CONTEXT, [qa(str(i), "who?", [(a, CONTEXT.index(a))]) for i, a in enumerate(answers)])]
    )
    features, _ = convert_examples_to_features(examples, tok, 96, 32, 4, is_training=True)
    assert len(features) == len(answers)
    for row, answer in enumerate(answers):
        pieces, (s, e) = _gb_answer_span(CONTEXT, answer, CONTEXT.index(answer), tok)
        offset = 2 + len(tok.encode_batch(["who?"])[0])
        assert features.input_word_ids[row, offset : offset + len(pieces)].tolist() == pieces
        got = (features.start_positions[row] - offset, features.end_positions[row] - offset)
        assert got == (s, e), answer

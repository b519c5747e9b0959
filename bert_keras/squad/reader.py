"""SQuAD JSON as published: `{"version", "data": [article]}`, article = `{"title",
"paragraphs": [{"context", "qas": [{"id", "question", "answers": [{"text",
"answer_start"}], "is_impossible"?, "plausible_answers"?}]}]}` (v2.0 adds the last two).

Every question becomes one `SquadExample` holding its passage. Bad input is counted in
`ReadStats`, never fatal, except a file that is not SQuAD JSON at all (DataError naming the
file and the place in it):

- an answer whose `answer_start` does not point at its text: when the text occurs in the
  passage, the occurrence nearest to `answer_start` is used (`answer_start_repaired`);
  otherwise the answer keeps its text for evaluation but has no position
  (`answer_not_in_passage`) and cannot be a training target;
- an empty passage (`empty_passages`), an empty question (`empty_questions`);
- with `version_2_with_negative=False`, a question marked `is_impossible`
  (`impossible_in_v1`) is dropped, as v1.1 has no such questions.
"""

from __future__ import annotations

import collections
import dataclasses
import json

import tensorflow as tf

from bert_keras.tasks.data import DataError


@dataclasses.dataclass(frozen=True)
class Answer:
    """A gold answer. `char_start` is its verified character offset in the passage (the
    repaired one when `answer_start` was off), or -1 when its text is not in the passage."""

    text: str
    answer_start: int
    char_start: int

    @property
    def char_end(self) -> int:
        """Exclusive end offset; only meaningful when `char_start >= 0`."""
        return self.char_start + len(self.text)


@dataclasses.dataclass
class SquadExample:
    qas_id: str
    question: str
    context: str
    answers: list[Answer]
    is_impossible: bool = False
    plausible_answers: list[Answer] = dataclasses.field(default_factory=list)
    title: str = ""
    context_index: int = 0  # Examples with the same passage share it (tokenized once).
    source: str = ""  # "path: article i, paragraph j, question k".

    @property
    def target(self) -> Answer | None:
        """The training answer: the first gold answer with a verified position."""
        for answer in self.answers:
            if answer.char_start >= 0:
                return answer
        return None


@dataclasses.dataclass
class ReadStats:
    path: str
    articles: int = 0
    paragraphs: int = 0
    questions: int = 0
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def summary(self) -> str:
        text = (
            f"{self.path}: {self.articles} articles, {self.paragraphs} paragraphs, "
            f"{self.questions} questions"
        )
        if self.counts:
            text += "; " + ", ".join(f"{n} {k}" for k, n in sorted(self.counts.items()))
        return text


def _locate(context: str, text: str, answer_start: int) -> tuple[int, bool]:
    """(verified start or -1, whether it was repaired)."""
    if not text:
        return -1, False
    if 0 <= answer_start and context[answer_start : answer_start + len(text)] == text:
        return answer_start, False
    best, found = -1, context.find(text)
    while found >= 0:
        if best < 0 or abs(found - answer_start) < abs(best - answer_start):
            best = found
        found = context.find(text, found + 1)
    return best, best >= 0


def _field(obj, key: str, kind, where: str):
    if not isinstance(obj, dict) or key not in obj:
        raise DataError(f"{where}: missing {key!r}; is this a SQuAD JSON file?")
    value = obj[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataError(f"{where}: {key!r} should be a {names}, got {value!r:.60}.")
    return value


def _list(obj: dict, key: str, where: str) -> list:
    """An optional list field (absent or null: empty)."""
    value = obj.get(key) or []
    if not isinstance(value, list):
        raise DataError(f"{where}: {key!r} should be a list, got {value!r:.60}.")
    return value


def _answers(raw, context: str, where: str, stats: ReadStats) -> list[Answer]:
    answers = []
    for k, item in enumerate(raw):
        at = f"{where}, answer {k}"
        text = _field(item, "text", str, at)
        start = item.get("answer_start", -1) if isinstance(item, dict) else -1
        if not isinstance(start, int):
            start = -1
        char_start, repaired = _locate(context, text, start)
        if repaired:
            stats.counts["answer_start_repaired"] += 1
        elif char_start < 0:
            stats.counts["answer_not_in_passage"] += 1
        answers.append(Answer(text, start, char_start))
    return answers


def parse_squad(data: dict, path: str, version_2_with_negative: bool):
    """A loaded SQuAD JSON object -> (examples, stats)."""
    stats = ReadStats(path)
    examples: list[SquadExample] = []
    articles = _field(data, "data", list, path)
    context_index = 0
    for i, article in enumerate(articles):
        stats.articles += 1
        title = article.get("title", "") if isinstance(article, dict) else ""
        for j, paragraph in enumerate(_field(article, "paragraphs", list, f"{path}: article {i}")):
            where_p = f"{path}: article {i}, paragraph {j}"
            stats.paragraphs += 1
            context = _field(paragraph, "context", str, where_p)
            if not context.strip():
                stats.counts["empty_passages"] += 1
            for k, qa in enumerate(_field(paragraph, "qas", list, where_p)):
                where = f"{where_p}, question {k}"
                stats.questions += 1
                qas_id = str(_field(qa, "id", (str, int), where))
                question = _field(qa, "question", str, where)
                is_impossible = bool(qa.get("is_impossible", False))
                if is_impossible and not version_2_with_negative:
                    stats.counts["impossible_in_v1"] += 1
                    continue
                if not question.strip():
                    stats.counts["empty_questions"] += 1
                answers = _answers(_list(qa, "answers", where), context, where, stats)
                plausible = _answers(_list(qa, "plausible_answers", where), context, where, stats)
                if is_impossible:
                    stats.counts["impossible"] += 1
                    answers = []  # v2 dev files keep none; some train files copy plausible ones.
                examples.append(
                    SquadExample(
                        qas_id=qas_id,
                        question=question,
                        context=context,
                        answers=answers,
                        is_impossible=is_impossible,
                        plausible_answers=plausible,
                        title=str(title),
                        context_index=context_index,
                        source=where,
                    )
                )
            context_index += 1
    return examples, stats


def read_squad(path: str, version_2_with_negative: bool = False):
    """Reads a SQuAD v1.1/v2.0 JSON file -> (list[SquadExample], ReadStats)."""
    if not tf.io.gfile.exists(path):
        raise DataError(f"{path}: no such file.")
    with tf.io.gfile.GFile(path, "rb") as f:
        raw = f.read()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 ({e}).") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg}).") from None
    return parse_squad(data, path, version_2_with_negative)


def gold_answers(examples: list[SquadExample]) -> dict[str, list[str]]:
    """qas_id -> gold answer texts ([] for unanswerable), for `evaluate`."""
    return {e.qas_id: [a.text for a in e.answers] for e in examples}

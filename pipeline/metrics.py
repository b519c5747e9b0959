"""Beam counters of the pretraining-data pipeline, and the summary printed at its end."""

from __future__ import annotations

from collections.abc import Mapping

from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

NAMESPACE = "bert_keras"

FILES_READ = "files_read"
FILES_WITHOUT_DOCUMENTS = "files_without_documents"
LINES_READ = "lines_read"
LINES_INVALID_UTF8 = "lines_invalid_utf8"
DOCUMENTS_READ = "documents_read"
DOCUMENTS_TOKENIZED = "documents_tokenized"
DOCUMENTS_SKIPPED_NO_TOKENS = "documents_skipped_no_tokens"
SENTENCES = "sentences"
SENTENCES_WITHOUT_TOKENS = "sentences_without_tokens"
INSTANCES = "instances"
INSTANCES_RANDOM_NEXT = "instances_random_next"
RANDOM_NEXT_UNAVAILABLE = "random_next_unavailable"
CHUNKS_SKIPPED_NO_RANDOM_DOCUMENT = "chunks_skipped_no_random_document"
TOKENS = "tokens"
MASKED_TOKENS = "masked_tokens"
BUCKETS = "buckets"
INSTANCES_CROSSING_DOCUMENTS = "instances_crossing_documents"
SENTENCES_SPLIT = "sentences_split"
LINES_INVALID_JSON = "lines_invalid_json"
RECORDS_WITHOUT_TEXT = "records_without_text"

ALL = (
    FILES_READ,
    FILES_WITHOUT_DOCUMENTS,
    LINES_READ,
    LINES_INVALID_UTF8,
    DOCUMENTS_READ,
    DOCUMENTS_TOKENIZED,
    DOCUMENTS_SKIPPED_NO_TOKENS,
    SENTENCES,
    SENTENCES_WITHOUT_TOKENS,
    INSTANCES,
    INSTANCES_RANDOM_NEXT,
    RANDOM_NEXT_UNAVAILABLE,
    CHUNKS_SKIPPED_NO_RANDOM_DOCUMENT,
    TOKENS,
    MASKED_TOKENS,
    BUCKETS,
    INSTANCES_CROSSING_DOCUMENTS,
    SENTENCES_SPLIT,
    LINES_INVALID_JSON,
    RECORDS_WITHOUT_TEXT,
)

_counters: dict = {}


def inc(name: str, value: int = 1) -> None:
    if value:
        if name not in _counters:
            _counters[name] = Metrics.counter(NAMESPACE, name)
        _counters[name].inc(value)


def query_counters(result) -> dict[str, int]:
    """Our counters from a finished pipeline result (committed where the runner has them)."""
    totals = dict.fromkeys(ALL, 0)
    for counter in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + int(value or 0)
    return totals


def summarize(
    counters: Mapping[str, int], has_next_sentence: bool = True
) -> dict[str, float | int | None]:
    """The figures a user checks: documents, sentences, instances, tokens, shares.

    Without NSP (RoBERTa records) `label_1_share` is None.
    """
    instances = counters[INSTANCES]
    tokens = counters[TOKENS]
    summary: dict[str, float | int | None] = {
        "documents": counters[DOCUMENTS_READ],
        "documents_used": counters[DOCUMENTS_TOKENIZED],
        "documents_skipped_no_tokens": counters[DOCUMENTS_SKIPPED_NO_TOKENS],
        "sentences": counters[SENTENCES],
        "instances": instances,
        "tokens": tokens,
        "masked_tokens": counters[MASKED_TOKENS],
        "masked_fraction": counters[MASKED_TOKENS] / tokens if tokens else 0.0,
        "label_1_share": counters[INSTANCES_RANDOM_NEXT] / instances if instances else 0.0,
    }
    if not has_next_sentence:
        summary["label_1_share"] = None
        summary["instances_crossing_documents"] = counters.get(INSTANCES_CROSSING_DOCUMENTS, 0)
        summary["sentences_split"] = counters.get(SENTENCES_SPLIT, 0)
    return summary


def format_summary(counters: Mapping[str, int], has_next_sentence: bool = True) -> str:
    summary = summarize(counters, has_next_sentence)
    lines = [
        f"documents: {summary['documents']} read, {summary['documents_used']} used, "
        f"{summary['documents_skipped_no_tokens']} skipped (no tokens)",
        f"sentences: {summary['sentences']} "
        f"({counters[SENTENCES_WITHOUT_TOKENS]} lines without tokens dropped, "
        f"{counters[LINES_INVALID_UTF8]} lines with invalid UTF-8)",
        f"instances: {summary['instances']} from {counters[BUCKETS]} buckets",
        f"tokens: {summary['tokens']}, masked: {summary['masked_tokens']} "
        f"({summary['masked_fraction']:.2%})",
    ]
    if has_next_sentence:
        lines.append(f"label 1 (random next) share: {summary['label_1_share']:.3f}")
    else:
        lines.append(
            f"no next-sentence labels; {summary['instances_crossing_documents']} instances "
            f"cross documents, {summary['sentences_split']} over-long sentences split"
        )
    if counters.get(LINES_INVALID_JSON) or counters.get(RECORDS_WITHOUT_TEXT):
        lines.append(
            f"jsonl lines skipped: {counters.get(LINES_INVALID_JSON, 0)} invalid JSON, "
            f"{counters.get(RECORDS_WITHOUT_TEXT, 0)} without the text field"
        )
    if counters[FILES_WITHOUT_DOCUMENTS]:
        lines.append(f"files without any document: {counters[FILES_WITHOUT_DOCUMENTS]}")
    if counters[RANDOM_NEXT_UNAVAILABLE]:
        lines.append(
            f"random next impossible (no other document in the bucket): "
            f"{counters[RANDOM_NEXT_UNAVAILABLE]} times; "
            f"{counters[CHUNKS_SKIPPED_NO_RANDOM_DOCUMENT]} one-sentence chunks skipped"
        )
    return "\n".join(lines)

"""Latency of the raw-text serving signature: ours next to keras-hub's BertTextClassifier.

Both models are exported the same way, as a SavedModel whose `serving_default` takes a
(B,) batch of raw strings, tokenizes in the graph (tensorflow-text), packs to
`--max_seq_length` and returns class probabilities:
- ours: `bert_keras.serving.ClassifierModule` over `BertClassifier` + `BertTextPreprocessor`;
- keras-hub's: `BertTextClassifierPreprocessor` + `BertTextClassifier` on a `BertBackbone`
  of the same size, wrapped in a `tf.Module` with the same signature.
Random weights, one synthetic vocabulary and text set for both (no download); the
preprocessing halves alone are timed too (rows `/pre`). Each is
loaded in this process with `tf.saved_model.load` and called `--iterations` times per batch
size after `--warmup` calls; the table shows p50/p99 latency per call.

    python -m benchmarks.serving_latency --preset=mini --iterations=50
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from bert_keras.config import BertConfig
from bert_keras.serving.export_module import KerasExportModule

_PRESET = flags.DEFINE_string("preset", "mini", "Model size (BertConfig.from_preset name).")
_MAX_SEQ_LENGTH = flags.DEFINE_integer("max_seq_length", 128, "Packed sequence length.")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["1", "32"], "Batch sizes to time.")
_ITERATIONS = flags.DEFINE_integer("iterations", 50, "Timed calls per batch size.")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed calls per batch size first.")
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 2, "Classifier outputs.")
_VOCAB_SIZE = flags.DEFINE_integer("vocab_size", 30522, "Synthetic vocabulary size.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the synthetic text and weights.")

RESERVED = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def synthetic_vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    """Reserved tokens, letters and their `##` forms, then random lower-case words."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = RESERVED + list(".,!?'") + letters + ["##" + c for c in letters]
    seen = set(vocab)
    while len(vocab) < size:
        word = "".join(rng.choice(letters, size=int(rng.integers(2, 8))))
        token = word if rng.random() < 0.7 else "##" + word
        if token not in seen:
            seen.add(token)
            vocab.append(token)
    return vocab


def synthetic_texts(vocab: list[str], count: int, words: int, rng: np.random.Generator):
    """`count` strings of `words` words: vocabulary words glued to continuations, some
    capitalised, with punctuation, so tokenizing splits, lower-cases and looks up pieces."""
    whole = [t for t in vocab[len(RESERVED) :] if not t.startswith("##") and t.isalpha()]
    pieces = [t[2:] for t in vocab if t.startswith("##") and len(t) > 3]
    texts = []
    for _ in range(count):
        out = []
        for _ in range(words):
            word = str(rng.choice(whole))
            if rng.random() < 0.3:
                word += str(rng.choice(pieces))
            if rng.random() < 0.1:
                word = word.capitalize()
            out.append(word + ("," if rng.random() < 0.05 else ""))
        texts.append(" ".join(out) + ".")
    return texts


def export_ours(config, vocab, max_seq_length, num_classes, path):
    from bert_keras.models import BertClassifier, BertEncoder
    from bert_keras.preprocessing import BertInputPacker, BertTextPreprocessor
    from bert_keras.serving import ClassifierModule
    from bert_keras.tokenization import BertWordPieceTokenizer

    encoder = BertEncoder(**dataclasses.asdict(config))
    classifier = BertClassifier(encoder, num_classes=num_classes)
    preprocessor = BertTextPreprocessor(
        BertWordPieceTokenizer(vocab, lower_case=True), BertInputPacker(max_seq_length)
    )
    labels = [f"class_{i}" for i in range(num_classes)]
    ClassifierModule(classifier, preprocessor, labels=labels).save(path)


def export_keras_hub(config, vocab, max_seq_length, num_classes, path):
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocab),
        num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads,
        hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size,
        dropout=config.hidden_dropout_prob,
        max_sequence_length=config.max_position_embeddings,
        num_segments=config.type_vocab_size,
    )
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True),
        sequence_length=max_seq_length,
    )
    classifier = keras_hub.models.BertTextClassifier(
        backbone, num_classes=num_classes, preprocessor=None
    )

    class KerasHubServing(KerasExportModule):
        def __init__(self):
            super().__init__()
            self.preprocessor = preprocessor
            self.classifier = classifier

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            logits = self.classifier(self.preprocessor(text), training=False)  # (B, C)
            return {"probabilities": tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)}

        def signatures(self):
            return {"serving_default": self.serve}

    KerasHubServing().save(path)


def export_our_preprocessor(config, vocab, max_seq_length, num_classes, path):
    from bert_keras.preprocessing import BertTextPreprocessor
    from bert_keras.serving import PreprocessorModule

    del config, num_classes
    PreprocessorModule(BertTextPreprocessor.from_vocabulary(vocab, max_seq_length)).save(path)


def export_keras_hub_preprocessor(config, vocab, max_seq_length, num_classes, path):
    import keras_hub

    del config, num_classes
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True),
        sequence_length=max_seq_length,
    )

    class KerasHubPreprocessing(KerasExportModule):
        def __init__(self):
            super().__init__()
            self.preprocessor = preprocessor

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            return self.preprocessor(text)

        def signatures(self):
            return {"serving_default": self.serve}

    KerasHubPreprocessing().save(path)


def time_signatures(signatures, texts, iterations, warmup):
    """Per-call wall times in ms of each `signature(text=texts)`, after `warmup` calls.

    The models take turns call by call, so load from other processes hits both alike.
    """
    batch = tf.constant(texts)
    for signature in signatures.values():
        for _ in range(warmup):
            signature(text=batch)
    times = {name: [] for name in signatures}
    for _ in range(iterations):
        for name, signature in signatures.items():
            start = time.perf_counter()
            outputs = signature(text=batch)
            for value in outputs.values():
                value.numpy()  # Wait for the result.
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: np.array(values) for name, values in times.items()}


def same_token_ids(vocab, max_seq_length, texts) -> bool:
    """Whether both preprocessors give the same token ids (the same work downstream)."""
    import keras_hub

    from bert_keras.preprocessing import BertTextPreprocessor

    ours = BertTextPreprocessor.from_vocabulary(vocab, max_seq_length)(tf.constant(texts))
    theirs = keras_hub.models.BertTextClassifierPreprocessor(
        keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True),
        sequence_length=max_seq_length,
    )(tf.constant(texts))
    return bool(np.array_equal(ours["input_word_ids"], theirs["token_ids"]))


def main(argv):
    del argv
    keras.utils.set_random_seed(_SEED.value)
    rng = np.random.default_rng(_SEED.value)
    config = BertConfig.from_preset(_PRESET.value, vocab_size=_VOCAB_SIZE.value)
    vocab = synthetic_vocabulary(config.vocab_size, rng)
    batch_sizes = [int(b) for b in _BATCH_SIZES.value]
    # Long enough that every text fills max_seq_length after tokenization.
    texts = synthetic_texts(vocab, max(batch_sizes), _MAX_SEQ_LENGTH.value, rng)
    exporters = {
        "bert_keras": export_ours,
        "keras_hub": export_keras_hub,
        "bert_keras/pre": export_our_preprocessor,
        "keras_hub/pre": export_keras_hub_preprocessor,
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        signatures = {}
        for name, export in exporters.items():
            path = os.path.join(tmp, name)
            export(config, vocab, _MAX_SEQ_LENGTH.value, _NUM_CLASSES.value, path)
            signatures[name] = tf.saved_model.load(path).signatures["serving_default"]
        for batch_size in batch_sizes:
            times = time_signatures(
                signatures, texts[:batch_size], _ITERATIONS.value, _WARMUP.value
            )
            for name, values in times.items():
                rows.append((name, batch_size, *np.percentile(values, [50, 99])))
    print(
        f"\nRaw-text serving_default latency: preset={_PRESET.value} "
        f"({config.num_hidden_layers} layers, hidden {config.hidden_size}), "
        f"seq {_MAX_SEQ_LENGTH.value}, {_ITERATIONS.value} calls each, "
        f"{os.cpu_count()} CPU cores, TF {tf.__version__}"
    )
    same = same_token_ids(vocab, _MAX_SEQ_LENGTH.value, texts)
    print(f"Both tokenize the benchmark texts to the same ids: {same}")
    print("(`/pre`: the preprocessing half alone, exported the same way: text -> token ids)")
    print(f"{'model':<16}{'batch':>7}{'p50 ms':>10}{'p99 ms':>10}{'ms/text p50':>13}")
    for name, batch_size, p50, p99 in rows:
        print(f"{name:<16}{batch_size:>7}{p50:>10.1f}{p99:>10.1f}{p50 / batch_size:>13.2f}")


def cli():
    app.run(main)


if __name__ == "__main__":
    cli()

r"""Pretraining throughput: our `pretrain` loop next to keras-hub's `BertMaskedLM.fit`.

Same synthetic records (GB layout, seq 128, 20 predictions), same model sizes (BERT-mini
and BERT-base), same global batch, AdamW, no XLA, float32, one device; prints sequences/s
and model FLOP/s (analytic training FLOPs, see `train_flops_per_sequence`) in one table.

    python benchmarks/pretrain_throughput.py [--presets=mini,base] [--measure_steps=5]

Our numbers include next-sentence prediction (keras-hub's MaskedLM has no NSP head, a
negligible 2*D*2 FLOPs per sequence). Timings are of steady-state steps: the first
`--warmup_steps` (tracing) are excluded for both. Figures vary with the machine's load.
"""

from __future__ import annotations

import os
import tempfile
import time

import keras
import keras_hub
import numpy as np
import tensorflow as tf
from absl import app, flags

from bert_keras import records
from bert_keras.config import BertConfig
from bert_keras.training import inputs, pretraining

_PRESETS = flags.DEFINE_list("presets", ["mini", "base"], "Model sizes to measure.")
_SEQ = flags.DEFINE_integer("max_seq_length", 128, "Sequence length.")
_PRED = flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked positions.")
_BATCH = flags.DEFINE_list("train_batch_size", ["32", "8"], "Global batch per preset.")
_WARMUP = flags.DEFINE_integer("warmup_steps", 2, "Steps excluded from the timing.")
_MEASURE = flags.DEFINE_integer("measure_steps", 5, "Steps timed.")


def train_flops_per_sequence(config: BertConfig, seq_length: int, predictions: int) -> float:
    """Multiply-adds x 2 of one training step per sequence: 3x the forward pass (forward,
    gradient w.r.t. activations, gradient w.r.t. weights).

    Forward per layer and token: Q, K, V, output projections 4 D^2, FFN 2 D I (x2 FLOPs),
    attention scores and weighted values 2 T D (x2). MLM head on P positions: dense D^2 and
    the tied output projection D V. Pooler + NSP: D^2 + 2 D per sequence.
    """
    d, i, t = config.hidden_size, config.intermediate_size, seq_length
    per_token_layer = 2 * (4 * d * d + 2 * d * i) + 2 * 2 * t * d
    encoder = config.num_hidden_layers * t * per_token_layer
    heads = predictions * 2 * (d * d + d * config.vocab_size) + 2 * (d * d + 2 * d)
    return 3.0 * (encoder + heads)


def write_records(directory: str, spec: records.RecordSpec, vocab_size: int, num: int) -> str:
    """Random ids in GB's layout, full-length sequences (the worst case for padding trim)."""
    rng = np.random.default_rng(0)
    path = os.path.join(directory, "bench.tfrecord")
    t, p = spec.max_seq_length, spec.max_predictions_per_seq
    with tf.io.TFRecordWriter(path) as writer:
        for _ in range(num):
            ids = rng.integers(5, vocab_size, t)
            ids[0], ids[t // 2], ids[-1] = 2, 3, 3
            positions = np.sort(rng.choice(np.arange(1, t - 1), p, replace=False))
            features = {
                records.INPUT_IDS: ids.tolist(),
                records.INPUT_MASK: [1] * t,
                records.SEGMENT_IDS: [0] * (t // 2 + 1) + [1] * (t - t // 2 - 1),
                records.MASKED_LM_POSITIONS: positions.tolist(),
                records.MASKED_LM_IDS: ids[positions].tolist(),
                records.MASKED_LM_WEIGHTS: [1.0] * p,
                records.NEXT_SENTENCE_LABELS: [int(rng.integers(2))],
            }
            writer.write(records.serialize_example(features, spec))
    return path


def measure_ours(path, spec, config, batch_size, out_dir) -> float:
    """Sequences/s of `pretraining.run`: the second loop of `measure_steps` steps."""
    steps = _MEASURE.value
    options = pretraining.PretrainOptions(
        input_file=path,
        output_dir=out_dir,
        bert_config=config,
        max_seq_length=spec.max_seq_length,
        max_predictions_per_seq=spec.max_predictions_per_seq,
        train_batch_size=batch_size,
        learning_rate=1e-4,
        # Loop 1 = warmup (tracing), loop 2 = timed; Progress reports loop 2's rate.
        num_train_steps=2 * steps,
        num_warmup_steps=1,
        save_checkpoints_steps=2 * steps,
        iterations_per_loop=steps,
        shuffle_buffer_size=256,
    )
    return pretraining.run(options)["examples_per_second"]


class _StepTimer(keras.callbacks.Callback):
    def __init__(self, warmup):
        super().__init__()
        self.warmup, self.times = warmup, []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


def measure_keras_hub(path, spec, config, batch_size) -> float:
    """Sequences/s of keras-hub `BertMaskedLM.fit` on the same records."""
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=config.vocab_size,
        num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads,
        hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size,
        dropout=config.hidden_dropout_prob,
        max_sequence_length=config.max_position_embeddings,
    )
    model = keras_hub.models.BertMaskedLM(backbone, preprocessor=None)
    model.compile(optimizer=keras.optimizers.AdamW(1e-4), jit_compile=False)

    def to_keras_hub(x, y):
        features = {
            "token_ids": x["input_word_ids"],
            "padding_mask": x["input_mask"] > 0,
            "segment_ids": x["input_type_ids"],
            "mask_positions": x["masked_lm_positions"],
        }
        return features, y["masked_lm_ids"], y["masked_lm_weights"]

    dataset = inputs.pretraining_dataset(
        [path], spec, batch_size, seed=0, shuffle_buffer_size=256
    ).map(to_keras_hub)
    warmup, steps = _WARMUP.value, _MEASURE.value
    timer = _StepTimer(warmup)
    model.fit(dataset, steps_per_epoch=warmup + steps, epochs=1, callbacks=[timer], verbose=0)
    elapsed = timer.times[-1] - timer.times[warmup - 1]
    return steps * batch_size / elapsed


def main(argv):
    del argv
    spec = records.RecordSpec(_SEQ.value, _PRED.value)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset, batch in zip(_PRESETS.value, _BATCH.value, strict=True):
            batch = int(batch)
            config = BertConfig.from_preset(preset)
            path = write_records(
                tmp, spec, config.vocab_size, num=batch * (2 * _MEASURE.value + _WARMUP.value + 2)
            )
            flops = train_flops_per_sequence(
                config, spec.max_seq_length, spec.max_predictions_per_seq
            )
            ours = measure_ours(path, spec, config, batch, os.path.join(tmp, f"run_{preset}"))
            keras.config.set_dtype_policy("float32")
            theirs = measure_keras_hub(path, spec, config, batch)
            for name, rate in (
                ("bert_keras pretrain", ours),
                ("keras-hub BertMaskedLM.fit", theirs),
            ):
                rows.append((preset, batch, name, rate, rate * flops / 1e9))
    print(
        f"\nseq {spec.max_seq_length}, {spec.max_predictions_per_seq} predictions, float32, no XLA"
    )
    print(f"{'preset':<7} {'batch':>5}  {'trainer':<28} {'seq/s':>8} {'GFLOP/s':>9}")
    for preset, batch, name, rate, gflops in rows:
        print(f"{preset:<7} {batch:>5}  {name:<28} {rate:>8.2f} {gflops:>9.1f}")


if __name__ == "__main__":
    app.run(main)

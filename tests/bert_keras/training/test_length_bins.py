"""Pretraining on length-binned records: record files of several lengths, one stream each."""

from __future__ import annotations

import collections
import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

from bert_keras import records
from bert_keras.config import BertConfig
from bert_keras.training import dynamic_masking, inputs, pretraining, trainer
from tests.bert_keras.training import record_utils

VOCAB, PRED = 64, 5
BINS = (16, 24, 32)
STATIC = records.RecordSpec(32, PRED)
DYNAMIC = records.RecordSpec(32, 0, has_masked_lm=False, has_next_sentence=False)
CONFIG = BertConfig(
    vocab_size=VOCAB,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=64,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def write_bins(root, spec: records.RecordSpec, per_file=(12, 8, 20), num_files=2, gzip_bin=None):
    """Records of each length of BINS under root/binNNN/ (as the pipeline names them, one
    directory each for record_utils); returns the glob of all of them."""
    for bound, count in zip(BINS, per_file, strict=True):
        directory = os.path.join(root, f"bin{bound:03d}")
        bin_spec = dataclasses.replace(spec, max_seq_length=bound)
        record_utils.write_records(
            directory, bin_spec, num_files=num_files, per_file=count, vocab_size=VOCAB, seed=bound
        )
        if bound == gzip_bin:  # Rewrite this bin's files GZIP-compressed.
            for path in tf.io.gfile.glob(os.path.join(directory, "*.tfrecord")):
                data = list(tf.data.TFRecordDataset(path).as_numpy_iterator())
                with tf.io.TFRecordWriter(path + ".gz", "GZIP") as writer:
                    for record in data:
                        writer.write(record)
                os.remove(path)
    return os.path.join(root, "bin*", "train-*")


def _take(dataset, n):
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in dataset.take(n)]


def test_files_are_grouped_by_spec_and_counted(tmp_path):
    files = records.list_record_files(write_bins(str(tmp_path), STATIC, gzip_bin=24))
    (tmp_path / "bin016" / "train-empty.tfrecord").write_bytes(b"")
    files.append(str(tmp_path / "bin016" / "train-empty.tfrecord"))
    groups = inputs.check_record_groups(files, STATIC, dynamic=False, vocab_size=VOCAB)
    assert [g.spec for g in groups] == [dataclasses.replace(STATIC, max_seq_length=b) for b in BINS]
    assert [len(g.files) for g in groups] == [2, 2, 2]  # The empty file is left out.
    assert [g.num_records for g in groups] == [24, 16, 40]  # Exact below 1 MB, GZIP too.
    # Estimated from a sample of the first file: within a few percent.
    assert inputs.estimate_num_records(groups[2].files, sample_bytes=2_000) == pytest.approx(
        40, rel=0.1
    )


def test_group_checks_name_file_and_flag(tmp_path):
    files = records.list_record_files(write_bins(str(tmp_path / "s"), STATIC))
    with pytest.raises(ValueError, match=r"bin032.*longest.*--max_seq_length=48"):
        inputs.check_record_groups(files, records.RecordSpec(48, PRED), dynamic=False)
    with pytest.raises(ValueError, match=r"bin032.*max_seq_length 32.*--max_seq_length=24"):
        inputs.check_record_groups(files, records.RecordSpec(24, PRED), dynamic=False)
    with pytest.raises(ValueError, match=r"shorter than --max_predictions_per_seq=20"):
        inputs.check_record_groups(files, records.RecordSpec(32, 20), dynamic=True)
    unmasked = records.list_record_files(write_bins(str(tmp_path / "d"), DYNAMIC))
    with pytest.raises(ValueError, match="mixes records of different features"):
        inputs.check_record_groups(files[:4] + unmasked[4:], STATIC, dynamic=True)


@pytest.mark.parametrize("dynamic", [False, True])
def test_resume_gives_the_same_batches_each_of_one_length(tmp_path, dynamic):
    spec = DYNAMIC if dynamic else STATIC
    files = records.list_record_files(write_bins(str(tmp_path), spec))
    groups = inputs.check_record_groups(files, dataclasses.replace(STATIC), dynamic=dynamic)
    masking = (
        dynamic_masking.MaskingConfig(VOCAB, record_utils.MASK, (0, 1, 2, 3, 4), PRED)
        if dynamic
        else None
    )
    kwargs = dict(seed=5, masking=masking, shuffle_buffer_size=16)
    full = _take(inputs.binned_pretraining_dataset(groups, 4, **kwargs), 40)  # > 1 epoch
    skip = 23
    resumed = _take(inputs.binned_pretraining_dataset(groups, 4, skip_batches=skip, **kwargs), 17)
    for a, b in zip(full[skip:], resumed, strict=True):
        tf.nest.map_structure(np.testing.assert_array_equal, a, b)
    lengths = collections.Counter(b[0]["input_word_ids"].shape[1] for b in full)
    assert set(lengths) == set(BINS), lengths
    for batch_inputs, labels in full:
        length = batch_inputs["input_word_ids"].shape[1]
        assert (
            batch_inputs["input_mask"].shape == batch_inputs["input_type_ids"].shape == (4, length)
        )
        assert (
            batch_inputs["masked_lm_positions"].shape == labels["masked_lm_ids"].shape == (4, PRED)
        )
        assert labels["masked_lm_weights"].sum() > 0
        assert batch_inputs["masked_lm_positions"].max() < length
        assert ("next_sentence_labels" in labels) == (not dynamic)
    # Another seed, another order of bins.
    other = _take(inputs.binned_pretraining_dataset(groups, 4, **{**kwargs, "seed": 6}), 40)
    assert [b[0]["input_word_ids"].shape for b in other] != [
        b[0]["input_word_ids"].shape for b in full
    ]


def test_bins_are_read_in_proportion_to_their_records(tmp_path):
    files = records.list_record_files(write_bins(str(tmp_path), STATIC, per_file=(10, 30, 60)))
    groups = inputs.check_record_groups(files, STATIC, dynamic=False)
    dataset = inputs.binned_pretraining_dataset(groups, 2, seed=1, shuffle_buffer_size=8)
    lengths = collections.Counter(
        int(b[0]["input_word_ids"].shape[1]) for b in dataset.take(500).as_numpy_iterator()
    )
    for bound, share in zip(BINS, (0.1, 0.3, 0.6), strict=True):
        # Binomial(500, share): within 4 standard deviations.
        assert abs(lengths[bound] - 500 * share) < 4 * np.sqrt(500 * share * (1 - share)), lengths


@pytest.mark.slow  # Three short runs of a tiny model: ~30 s.
def test_pretraining_on_bins_resumes_and_traces_once(tmp_path, monkeypatch):
    glob = write_bins(str(tmp_path / "records"), STATIC)
    seen: list[int] = []
    traces: list[int] = []
    make_dataset = inputs.binned_pretraining_dataset

    def recording_dataset(*args, **kwargs):
        def record(batch_inputs, labels):
            length = tf.py_function(
                lambda n: seen.append(int(n)) or n,
                [tf.shape(batch_inputs["input_word_ids"])[1]],
                tf.int32,
            )
            with tf.control_dependencies([length]):
                batch_inputs = dict(
                    batch_inputs, input_mask=tf.identity(batch_inputs["input_mask"])
                )
            return batch_inputs, labels

        return make_dataset(*args, **kwargs).map(record)

    train = trainer.PretrainingTrainer.train

    def counting_train(self):
        result = train(self)
        traces.append(self._train_loop.experimental_get_tracing_count())
        return result

    monkeypatch.setattr(inputs, "binned_pretraining_dataset", recording_dataset)
    monkeypatch.setattr(trainer.PretrainingTrainer, "train", counting_train)

    def run(output_dir, steps):
        return pretraining.run(
            pretraining.PretrainOptions(
                input_file=glob,
                output_dir=str(output_dir),
                bert_config=CONFIG,
                max_seq_length=32,
                max_predictions_per_seq=PRED,
                train_batch_size=4,
                learning_rate=5e-3,
                num_train_steps=steps,
                num_warmup_steps=2,
                save_checkpoints_steps=6,
                iterations_per_loop=3,
                shuffle_buffer_size=16,
            )
        )

    straight = run(tmp_path / "straight", 12)
    assert straight["step"] == 12 and np.isfinite(straight["loss"]) and straight["loss"] > 0
    assert set(seen) == set(BINS), collections.Counter(seen)
    assert traces == [1]  # One trace for every length: the step sees (B, None).
    # Preempted after ckpt-6: a directory holding only that checkpoint, run to the end.
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    for path in tf.io.gfile.glob(str(tmp_path / "straight" / "ckpt-6.*")):
        tf.io.gfile.copy(path, str(resumed_dir / os.path.basename(path)))
    tf.io.gfile.copy(
        str(tmp_path / "straight" / trainer.CONFIG_FILE), str(resumed_dir / trainer.CONFIG_FILE)
    )
    (resumed_dir / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-6"\nall_model_checkpoint_paths: "ckpt-6"\n'
    )
    del seen[:]
    resumed = run(resumed_dir, 12)  # Resumes from ckpt-6, skipping 6 batches.
    assert resumed["step"] == 12 and traces == [1, 1]
    assert resumed["weights_global_norm"] == pytest.approx(
        straight["weights_global_norm"], rel=1e-5
    )
    assert resumed["loss"] == pytest.approx(straight["loss"], rel=1e-4)

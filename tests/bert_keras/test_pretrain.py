"""End-to-end tests of `bert_keras.pretrain` on tiny records (CPU, tiny model).

In-process tests call `pretraining.run`; the multi-process ones run the real command in
subprocesses, each under a hard SIGKILL timeout (a worker whose peer never starts would
block forever).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from bert_keras import records
from bert_keras.checkpoints import save_checkpoint
from bert_keras.config import BertConfig
from bert_keras.models import BertEncoder
from bert_keras.training import pretraining
from tests.bert_keras.training import record_utils

VOCAB = 64
SEQ, PRED = 32, 5
CONFIG = BertConfig(
    vocab_size=VOCAB,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=64,
)
NO_DROPOUT = dataclasses.replace(CONFIG, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
SUBPROCESS_TIMEOUT = 240  # seconds, a bound for hangs only; subprocess.run SIGKILLs on expiry.


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain_data")
    glob = record_utils.write_records(
        str(root / "static"), records.RecordSpec(SEQ, PRED), per_file=64
    )
    config_path = str(root / "bert_config.json")
    CONFIG.to_json_file(config_path)
    return {
        "glob": glob,
        "root": root,
        "config": config_path,
        "vocab": record_utils.write_vocab(str(root / "vocab.txt"), VOCAB),
    }


def _options(data, output_dir, **overrides):
    values = dict(
        input_file=data["glob"],
        output_dir=str(output_dir),
        bert_config=CONFIG,
        max_seq_length=SEQ,
        max_predictions_per_seq=PRED,
        train_batch_size=16,
        learning_rate=5e-3,
        num_train_steps=20,
        num_warmup_steps=3,
        save_checkpoints_steps=10,
        iterations_per_loop=5,
        shuffle_buffer_size=64,
    )
    values.update(overrides)
    return pretraining.PretrainOptions(**values)


def _losses(output_dir):
    """The loss per logged loop, read back from the TensorBoard event file."""
    losses = {}
    for path in tf.io.gfile.glob(os.path.join(output_dir, "train", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "loss":
                    losses[event.step] = float(tf.make_ndarray(value.tensor))
    return [losses[step] for step in sorted(losses)]


def test_loss_falls_and_outputs_are_written(data, tmp_path):
    metrics = pretraining.run(_options(data, tmp_path, num_train_steps=60, iterations_per_loop=10))
    losses = _losses(tmp_path)
    assert len(losses) == 6
    # Uniform guessing: ln(64) + ln(2) = 4.85; the model learns the counting pattern.
    assert losses[-1] < losses[0] - 0.3 and all(np.diff(losses) < 0.05), losses
    assert metrics["step"] == 60 and metrics["mlm_accuracy"] > 0.1
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["step"] == 60 and not on_disk["preempted"]
    assert BertConfig.from_json_file(str(tmp_path / "bert_config.json")) == CONFIG
    # Checkpoints at 10, 20, ... 60, at most keep_checkpoint_max (5) kept.
    kept = tf.train.get_checkpoint_state(str(tmp_path)).all_model_checkpoint_paths
    assert [int(p.rsplit("-", 1)[1]) for p in kept] == [20, 30, 40, 50, 60]
    # The same command again: already finished, the final metrics are kept as they are.
    again = pretraining.run(_options(data, tmp_path, num_train_steps=60, iterations_per_loop=10))
    assert again == on_disk


def test_gradient_accumulation_matches_the_full_batch(data, tmp_path):
    common = dict(bert_config=NO_DROPOUT, num_train_steps=6, save_checkpoints_steps=6)
    full = pretraining.run(_options(data, tmp_path / "full", **common))
    accum = pretraining.run(_options(data, tmp_path / "accum", grad_accum_steps=4, **common))
    assert accum["loss"] == pytest.approx(full["loss"], rel=1e-4)
    assert accum["weights_global_norm"] == pytest.approx(full["weights_global_norm"], rel=1e-5)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_and_dynamic_masking_run(data, tmp_path, precision):
    overrides = {}
    if precision == "bf16":  # Also: LAMB, RoBERTa-style records (no masks, no NSP).
        spec = records.RecordSpec(SEQ, 0, has_masked_lm=False, has_next_sentence=False)
        glob = record_utils.write_records(str(tmp_path / "records"), spec, per_file=32)
        overrides = dict(
            input_file=glob, masking="dynamic", vocab_file=data["vocab"], optimizer="lamb"
        )
    metrics = pretraining.run(
        _options(data, tmp_path / "run", mixed_precision=precision, num_train_steps=10, **overrides)
    )
    assert metrics["step"] == 10 and np.isfinite(metrics["loss"])
    assert metrics["mlm_accuracy"] > 0 and np.isfinite(metrics["weights_global_norm"])
    if precision == "bf16":
        assert metrics["nsp_loss"] == 0.0


def test_flagfile_is_read(data, tmp_path, capsys):
    from absl import flags

    from bert_keras import pretrain

    flagfile = tmp_path / "flags.txt"
    flagfile.write_text(
        f"--input_file={tmp_path}/missing-*.tfrecord\n--output_dir={tmp_path}/out\n"
        f"--bert_config_file={data['config']}\n--max_seq_length={SEQ}\n"
    )
    argv = flags.FLAGS(["pretrain", f"--flagfile={flagfile}"])
    try:
        with pytest.raises(SystemExit) as exit_info:
            pretrain.main(argv)
    finally:
        flags.FLAGS.unparse_flags()
    # The glob from the flagfile reached the reader: its error names it, in one line.
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("pretrain: error: ") and "missing-" in error


def test_two_phase_warm_starts_from_phase_one(data, tmp_path):
    phase1 = pretraining.run(_options(data, tmp_path / "phase1", num_train_steps=10))
    long_glob = record_utils.write_records(
        str(tmp_path / "long"), records.RecordSpec(64, 10), per_file=32
    )
    # Learning rate 0: phase 2 must end with exactly phase 1's weights, so they were loaded.
    phase2 = pretraining.run(
        _options(
            data,
            tmp_path / "phase2",
            input_file=long_glob,
            max_seq_length=64,
            max_predictions_per_seq=10,
            init_checkpoint=str(tmp_path / "phase1"),
            learning_rate=0.0,
            num_train_steps=5,
        )
    )
    assert phase2["weights_global_norm"] == pytest.approx(phase1["weights_global_norm"], rel=1e-6)


def test_bad_input_fails_before_training(data, tmp_path):
    with pytest.raises(ValueError, match="matches no file"):
        pretraining.run(_options(data, tmp_path, input_file=str(tmp_path / "none-*.tfrecord")))
    with pytest.raises(ValueError, match=r"train-0000.*--max_seq_length=48"):
        pretraining.run(_options(data, tmp_path, max_seq_length=48))
    with pytest.raises(ValueError, match="token id .* outside the model's vocab_size 32"):
        pretraining.run(
            _options(data, tmp_path, bert_config=dataclasses.replace(CONFIG, vocab_size=32))
        )
    with pytest.raises(ValueError, match="--max_predictions_per_seq=7"):
        pretraining.run(_options(data, tmp_path, max_predictions_per_seq=7))
    with pytest.raises(ValueError, match="--masking=dynamic needs --vocab_file"):
        pretraining.run(_options(data, tmp_path, masking="dynamic"))
    other = dataclasses.replace(CONFIG, hidden_size=64, intermediate_size=128)
    save_checkpoint(BertEncoder(**dataclasses.asdict(other)), str(tmp_path / "other"), other)
    with pytest.raises(ValueError, match=r"--init_checkpoint .*hidden_size"):
        pretraining.run(_options(data, tmp_path, init_checkpoint=str(tmp_path / "other")))
    with pytest.raises(ValueError, match="Give exactly one of"):
        pretraining.load_bert_config(None, None)
    # Resuming into a directory trained with another config is refused.
    pretraining.run(_options(data, tmp_path / "run", num_train_steps=5, save_checkpoints_steps=5))
    with pytest.raises(ValueError, match=r"holds checkpoints of another model.*hidden_size"):
        pretraining.run(_options(data, tmp_path / "run", bert_config=other, num_train_steps=10))
    assert not list((tmp_path / "run").glob("ckpt-10*"))


# --- Subprocesses -------------------------------------------------------------------------


def _command(data, output_dir, *extra):
    return [
        sys.executable,
        "-m",
        "bert_keras.pretrain",
        f"--input_file={data['glob']}",
        f"--output_dir={output_dir}",
        f"--bert_config_file={data['config']}",
        f"--max_seq_length={SEQ}",
        f"--max_predictions_per_seq={PRED}",
        "--train_batch_size=16",
        "--learning_rate=5e-3",
        "--num_train_steps=40",  # Steps are cheap (~25 ms); room to interrupt mid-run.
        "--num_warmup_steps=3",
        "--save_checkpoints_steps=4",
        "--iterations_per_loop=2",
        "--shuffle_buffer_size=64",
        "--deterministic",
        *extra,
    ]


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.update(extra)
    return env


def _run(command, **kwargs):
    result = subprocess.run(
        command, env=_env(), capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, **kwargs
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _final_state(output_dir):
    """Every tensor of the last checkpoint: weights, optimiser slots, step, RNG states."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(output_dir)))
    names = [
        n
        for n in reader.get_variable_to_shape_map()
        if n != "_CHECKPOINTABLE_OBJECT_GRAPH" and not n.startswith("save_counter")
    ]
    assert len(names) > 100
    return {n: reader.get_tensor(n) for n in names}


@pytest.mark.slow
def _latest_step(output_dir) -> int:
    latest = tf.train.latest_checkpoint(str(output_dir))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def test_kill_9_and_resume_ends_with_the_same_weights(data, tmp_path):
    _run(_command(data, tmp_path / "straight"))
    interrupted = tmp_path / "interrupted"
    command = _command(data, interrupted)
    process = subprocess.Popen(
        command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        # Kill between checkpoints: once the checkpoint state names ckpt-8 (its files are
        # written before the state file, so waiting on ckpt-8.index races), mid-way to ckpt-12.
        while not _latest_step(interrupted) >= 8:
            assert process.poll() is None and time.monotonic() < deadline, "no checkpoint"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    stopped_at = int(tf.train.latest_checkpoint(str(interrupted)).rsplit("-", 1)[1])
    assert 8 <= stopped_at < 40
    # SIGTERM (preemption notice): checkpoint at the end of the current loop, then exit.
    process = subprocess.Popen(
        command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while int(tf.train.latest_checkpoint(str(interrupted)).rsplit("-", 1)[1]) == stopped_at:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        observed = int(tf.train.latest_checkpoint(str(interrupted)).rsplit("-", 1)[1])
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=SUBPROCESS_TIMEOUT)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 128 + signal.SIGTERM
    # Stopped at the end of a loop with a checkpoint of exactly that step: nothing lost.
    preempted = json.loads((interrupted / "metrics.json").read_text())
    assert preempted["preempted"] and preempted["step"] >= observed
    assert tf.train.latest_checkpoint(str(interrupted)).endswith(f"ckpt-{preempted['step']}")
    resumed = _run(command)
    assert "Resuming from" in resumed.stderr
    straight, again = _final_state(tmp_path / "straight"), _final_state(interrupted)
    assert straight.keys() == again.keys()
    for name in straight:
        np.testing.assert_array_equal(straight[name], again[name], err_msg=name)
    metrics = [
        json.loads((d / "metrics.json").read_text()) for d in (tmp_path / "straight", interrupted)
    ]
    assert metrics[0]["loss"] == metrics[1]["loss"]


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_mirrored_two_processes_agree(data, tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    output_dir = tmp_path / "mwms"
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        processes.append(
            subprocess.Popen(
                _command(
                    data, output_dir, "--strategy=multi_worker_mirrored", "--num_train_steps=8"
                ),
                env=_env(TF_CONFIG=tf_config),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    try:
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            process.kill()  # SIGKILL: no-op for finished workers, ends a blocked one.
    errors = [p.stderr.read()[-2000:] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], errors
    chief = json.loads((output_dir / "metrics.json").read_text())
    worker = json.loads((output_dir / "worker_scratch" / "worker_1" / "metrics.json").read_text())
    assert chief["num_replicas"] == 2 and chief["step"] == 8
    for key in ("loss", "mlm_accuracy", "weights_global_norm"):
        assert chief[key] == worker[key], key


_MIRRORED_SCRIPT = """
import json, sys, dataclasses
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from bert_keras.training import pretraining
from tests.bert_keras import test_pretrain as t
data = json.loads(sys.argv[1])
results = {}
for strategy in ("one_device", "mirrored"):
    results[strategy] = pretraining.run(t._options(
        data, data["out"] + "/" + strategy, strategy=strategy, bert_config=t.NO_DROPOUT,
        num_train_steps=8, save_checkpoints_steps=8, grad_accum_steps=2))
print("RESULTS" + json.dumps(results))
"""


@pytest.mark.slow
def test_mirrored_over_two_devices_equals_one_device(data, tmp_path):
    payload = json.dumps({"glob": data["glob"], "out": str(tmp_path)})
    result = _run([sys.executable, "-c", _MIRRORED_SCRIPT, payload], cwd=os.getcwd())
    results = json.loads(result.stdout.split("RESULTS", 1)[1])
    one, mirrored = results["one_device"], results["mirrored"]
    assert (one["num_replicas"], mirrored["num_replicas"]) == (1, 2)
    for key in ("loss", "mlm_accuracy", "nsp_accuracy", "weights_global_norm"):
        assert mirrored[key] == pytest.approx(one[key], rel=1e-4), key
    a, b = _final_state(tmp_path / "one_device"), _final_state(tmp_path / "mirrored")
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-3, atol=1e-5, err_msg=name)

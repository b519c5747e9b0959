import json

import pytest
import tensorflow as tf

from bert_keras.training import trainer


def test_batch_size_must_divide():
    config = trainer.TrainConfig(
        "/tmp/x", train_batch_size=18, num_train_steps=1, grad_accum_steps=3
    )
    assert trainer.check_batch_size(config, 2) == 9
    with pytest.raises(
        ValueError, match=r"--train_batch_size=18 .* 4 replicas x --grad_accum_steps=3"
    ):
        trainer.check_batch_size(config, 4)


def test_resume_refuses_another_config(tmp_path):
    saved = {"hidden_size": 32, "vocab_size": 64}
    (tmp_path / trainer.CONFIG_FILE).write_text(json.dumps(saved))
    # No checkpoint yet: nothing to protect.
    trainer._check_resume_config(str(tmp_path), json.dumps({"hidden_size": 64, "vocab_size": 64}))
    tf.train.Checkpoint(v=tf.Variable(1.0)).save(str(tmp_path / "ckpt"))
    trainer._check_resume_config(str(tmp_path), json.dumps(saved))
    with pytest.raises(ValueError, match=r"another model.*hidden_size"):
        trainer._check_resume_config(
            str(tmp_path), json.dumps({"hidden_size": 64, "vocab_size": 64})
        )


def test_metrics_are_global_ratios():
    totals = dict(
        mlm_loss_sum=30.0,
        mlm_weight_sum=10.0,
        mlm_correct_sum=4.0,
        nsp_loss_sum=2.0,
        nsp_count=4.0,
        nsp_correct_sum=3.0,
    )
    metrics = trainer._metrics(totals)
    assert metrics == pytest.approx(
        {"loss": 3.5, "mlm_loss": 3.0, "mlm_accuracy": 0.4, "nsp_loss": 0.5, "nsp_accuracy": 0.75}
    )

import numpy as np
import pytest
import tensorflow as tf

from bert_keras import records
from bert_keras.training import dynamic_masking, inputs
from tests.bert_keras.training import record_utils

SPEC = records.RecordSpec(max_seq_length=32, max_predictions_per_seq=5)


def _take(dataset, n):
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in dataset.take(n)]


@pytest.mark.parametrize("dynamic", [False, True])
def test_skip_resumes_the_same_stream(tmp_path, dynamic):
    glob = record_utils.write_records(str(tmp_path), SPEC, num_files=3, per_file=10)
    files = records.list_record_files(glob)
    masking = (
        dynamic_masking.MaskingConfig(64, 4, (0, 1, 2, 3, 4), SPEC.max_predictions_per_seq)
        if dynamic
        else None
    )
    kwargs = dict(seed=5, masking=masking, shuffle_buffer_size=16)
    full = _take(inputs.pretraining_dataset(files, SPEC, 4, **kwargs), 12)  # > 1 epoch
    resumed = _take(inputs.pretraining_dataset(files, SPEC, 4, skip_batches=7, **kwargs), 5)
    for a, b in zip(full[7:], resumed, strict=True):
        tf.nest.map_structure(np.testing.assert_array_equal, a, b)
    inputs_0, labels_0 = full[0]
    assert inputs_0["input_word_ids"].shape == (4, 32)
    assert labels_0["masked_lm_weights"].shape == (4, 5)
    if dynamic:  # The second epoch is masked differently from the first.
        epoch = 30 // 4
        assert not all(
            np.array_equal(full[i][1]["masked_lm_ids"], full[i + epoch][1]["masked_lm_ids"])
            for i in range(4)
        )


def test_workers_read_disjoint_files(tmp_path):
    glob = record_utils.write_records(str(tmp_path), SPEC, num_files=2, per_file=8)
    files = records.list_record_files(glob)
    seen = []
    for worker in range(2):
        context = tf.distribute.InputContext(2, worker, 2)
        dataset = inputs.pretraining_dataset(files, SPEC, 8, seed=1, input_context=context)
        seen.append({tuple(row) for b in _take(dataset, 6) for row in b[0]["input_word_ids"]})
    # Each worker sees exactly the 8 records of its own file.
    assert len(seen[0]) == len(seen[1]) == 8 and not seen[0] & seen[1]
    with pytest.raises(ValueError, match="cannot be sharded over 3 workers"):
        inputs.pretraining_dataset(
            files, SPEC, 8, seed=1, input_context=tf.distribute.InputContext(3, 0, 3)
        )


def test_check_records_names_file_and_flag(tmp_path):
    glob = record_utils.write_records(str(tmp_path), SPEC, num_files=1, per_file=2)
    files = records.list_record_files(glob)
    assert inputs.check_records(files, SPEC, dynamic=False) == SPEC
    with pytest.raises(ValueError, match=r"train-00000-of-00001.*--max_seq_length=64"):
        inputs.check_records(files, records.RecordSpec(64, 5), dynamic=False)
    with pytest.raises(ValueError, match="--max_predictions_per_seq=6"):
        inputs.check_records(files, records.RecordSpec(32, 6), dynamic=False)
    assert inputs.check_records(files, records.RecordSpec(32, 6), dynamic=True) == SPEC
    unmasked = records.RecordSpec(32, 0, has_masked_lm=False)
    glob2 = record_utils.write_records(str(tmp_path / "u"), unmasked, num_files=1, per_file=2)
    with pytest.raises(ValueError, match="use --masking=dynamic"):
        inputs.check_records(records.list_record_files(glob2), SPEC, dynamic=False)
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.tfrecord: no records"):
        inputs.check_records([str(tmp_path / "empty.tfrecord")], SPEC, dynamic=False)

import os

import pytest

from bert_keras.serving import export_layout


def _write_marker(path):
    with open(os.path.join(path, "saved_model.pb"), "w") as f:
        f.write("x")


def test_versions_count_up_and_ignore_other_entries(tmp_path):
    root = str(tmp_path)
    first = export_layout.write_versioned(root, "bert_classifier", _write_marker)
    assert first == os.path.join(root, "bert_classifier", "1")
    os.makedirs(os.path.join(root, "bert_classifier", "notes"))
    os.makedirs(os.path.join(root, "bert_classifier", "7"))
    second = export_layout.write_versioned(root, "bert_classifier", _write_marker)
    assert second.endswith(os.path.join("bert_classifier", "8"))
    assert export_layout.existing_versions(os.path.join(root, "bert_classifier")) == [1, 7, 8]
    # Only version folders remain: the temporary folders were renamed.
    assert sorted(os.listdir(os.path.join(root, "bert_classifier"))) == ["1", "7", "8", "notes"]


def test_explicit_version_and_no_overwrite(tmp_path):
    root = str(tmp_path)
    path = export_layout.write_versioned(root, "m", _write_marker, version=3)
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    with pytest.raises(ValueError, match="already exists"):
        export_layout.write_versioned(root, "m", _write_marker, version=3)


def test_failed_write_publishes_nothing(tmp_path):
    def fail(path):
        _write_marker(path)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        export_layout.write_versioned(str(tmp_path), "m", fail)
    assert os.listdir(tmp_path / "m") == []
    assert export_layout.next_version(str(tmp_path / "m")) == 1


@pytest.mark.parametrize("name", ["", "a/b", ".hidden"])
def test_bad_model_name(tmp_path, name):
    with pytest.raises(ValueError, match="model_name"):
        export_layout.write_versioned(str(tmp_path), name, _write_marker)

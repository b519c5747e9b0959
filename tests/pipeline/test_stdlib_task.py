import collections
import os

from pipeline import stdlib_task


def _write_package(root, name, docstrings):
    os.makedirs(root / name, exist_ok=True)
    body = "\n".join(f'class C{i}:\n    """{doc}"""\n' for i, doc in enumerate(docstrings))
    (root / name / "__init__.py").write_text(body)


def test_labels_are_top_packages_and_splits_are_deterministic(tmp_path):
    root = tmp_path / "lib"
    sentence = "This sentence is about {}. It has a second sentence too."
    _write_package(root, "alpha", [sentence.format(f"alpha {i}") for i in range(30)])
    _write_package(root, "beta", [sentence.format(f"beta {i}") for i in range(20)])
    _write_package(root, "gamma", [sentence.format(f"gamma {i}") for i in range(5)])
    splits = stdlib_task.build_task(root=str(root), num_labels=2, sentences_per_passage=2)
    labels = {label for rows in splits.values() for _, label in rows}
    assert labels == {"alpha", "beta"}  # gamma has the fewest passages.
    counts = collections.Counter(label for rows in splits.values() for _, label in rows)
    assert counts == {"alpha": 30, "beta": 20}  # Every passage lands in exactly one split.
    assert splits == stdlib_task.build_task(root=str(root), num_labels=2, sentences_per_passage=2)
    assert splits["train"] and splits["dev"]


def test_written_tsvs_have_no_tabs_inside_fields(tmp_path):
    splits = {
        "train": [('a\tb "quoted"\nline', "x")],
        "dev": [("dev text", "y")],
        "test": [("test text", "x")],
    }
    counts = stdlib_task.write_task(str(tmp_path), splits)
    assert counts == {"train": 1, "dev": 1, "test": 1}
    train = (tmp_path / "train.tsv").read_text().splitlines()
    assert train == ["index\tsentence\tlabel", '0\ta b "quoted" line\tx']
    assert (tmp_path / "test.tsv").read_text().splitlines() == ["index\tsentence", "0\ttest text"]

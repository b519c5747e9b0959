# Set-up and the two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= out/demo

.PHONY: install test test-fast lint typecheck bazel bazel-test-all bazel-test-fast demo pipeline-demo lock clean

install: $(VENV)/.installed

# Installs the tested set: pyproject's pins, every transitive version from requirements.lock.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[test]'
	touch $@

# The single test command (CI runs it); each test runs once: ruff and mypy (seconds), then
# scripts/bazel_check.sh (buildifier, `bazel build //...` and the fast tests of every test file
# under `bazel test`, one process per file; it installs Bazel in CI), then pytest runs the tests
# marked slow (tests/test_build_coverage.py checks that nothing falls between the two).
test: install
	$(MAKE) --no-print-directory lint typecheck
	PY=$(PY) scripts/bazel_check.sh
	$(PY) -m pytest -q -ra --durations=15 -m slow

# The fast tests with pytest alone, in one process (no Bazel): the quick loop while developing.
test-fast: install
	$(PY) -m pytest -q -m 'not slow'

LINT_PATHS := pipeline bert_keras tests benchmarks tools setup.py

lint: install
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)

typecheck: install
	$(PY) -m mypy

# buildifier, `bazel build //...` and the fast tests under Bazel (installs Bazel when root).
bazel: install
	PY=$(PY) scripts/bazel_check.sh

# Every test of every test file under Bazel, one process per file.
bazel-test-all: install
	bazel test //...

bazel-test-fast: install
	bazel test --test_tag_filters=-slow --test_arg=-m --test_arg="not slow" //...

# The main job end to end on the default corpus: corpus -> vocab -> records -> pretrain -> fine-tune -> export -> predict.
demo: install
	$(PY) -m bert_keras.demo --output_dir=$(OUT)

lock:
	$(PY) -m pip freeze --exclude-editable --exclude bert-keras | sort > requirements.lock

clean:
	rm -rf $(VENV) out build dist *.egg-info

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

# The single test command (CI runs it): ruff and mypy (seconds), the Bazel check (about a
# minute; it installs Bazel in CI, so the build-coverage test below also sees `bazel query`),
# then the pytest suite.
test: install
	$(MAKE) --no-print-directory lint typecheck
	scripts/bazel_check.sh
	$(PY) -m pytest -q -ra --durations=15

test-fast: install
	$(PY) -m pytest -q -m 'not slow'

LINT_PATHS := pipeline bert_keras tests benchmarks tools setup.py

lint: install
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)

typecheck: install
	$(PY) -m mypy

# buildifier, `bazel build //...` and the `bazel_ci` tests (installs Bazel when root; see script).
bazel: install
	scripts/bazel_check.sh

# Every test file under Bazel, one process each (slower than pytest; the suite already runs there).
bazel-test-all: install
	bazel test //...

bazel-test-fast: install
	bazel test --test_arg=-m --test_arg="not slow" //...

# The main job end to end on the default corpus: corpus -> vocab -> records -> pretrain -> fine-tune -> export -> predict.
demo: install
	$(PY) -m bert_keras.demo --output_dir=$(OUT)

lock:
	$(PY) -m pip freeze --exclude-editable --exclude bert-keras | sort > requirements.lock

clean:
	rm -rf $(VENV) out build dist *.egg-info

# Set-up and the two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= out/demo

.PHONY: install test test-fast lint demo pipeline-demo lock clean

install: $(VENV)/.installed

# Installs the tested set: pyproject's pins, every transitive version from requirements.lock.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[test]'
	touch $@

test: install
	$(PY) -m pytest -q -ra --durations=15

test-fast: install
	$(PY) -m pytest -q -m 'not slow'

lint: install
	$(PY) -m ruff check pipeline bert_keras tests benchmarks
	$(PY) -m ruff format --check pipeline bert_keras tests benchmarks

# Until the end-to-end demo lands, the main job runs the data pipeline on the default corpus.
demo: install
	$(PY) -m pipeline.demo --output_dir=$(OUT)

lock:
	$(PY) -m pip freeze --exclude-editable --exclude bert-keras | sort > requirements.lock

clean:
	rm -rf $(VENV) out build dist *.egg-info

# Tiaojie: every target works on a fresh clone with nothing installed but Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install up test lint typecheck unit bench bench-quick reliability schema clean corpus model model-report

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv

# --compile-bytecode: uv leaves the libraries as source only, and where the environment
# sets PYTHONDONTWRITEBYTECODE every process compiled them again on start: 7.0 s of CPU
# to import the app and Prefect, 3.6 s from bytecode. tiaojie up, the workers and their
# flow-run processes, and the tests' servers all start so.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

up: install
	$(BIN)/tiaojie init --demo
	$(BIN)/tiaojie up --demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy models tasks flows api deployments tiaojie_cli

# The tests spread over the machine's cores (pytest-xdist; which tests go together and
# in what order: tests/conftest.py). On two cores the suite took 1,902 s alone, 1,307 s
# spread.
test: lint typecheck
	$(BIN)/pytest -n auto --dist loadfile --no-loadscope-reorder --durations=20

unit: install
	$(BIN)/pytest tests/unit -q

bench: install
	$(BIN)/python -m bench --full

bench-quick: install
	$(BIN)/python -m bench --quick

reliability: install
	$(BIN)/python -m tests.reliability.long_run

# Triage classifier: the corpus is generated from hand-written fragments; the model is
# trained from it and versioned in the repository (make install never retrains).
corpus: install
	$(BIN)/python -m models.triage_data.make_corpus

model: install
	$(BIN)/tiaojie triage train

model-report: install
	$(BIN)/tiaojie triage evaluate

# Before the first release the schema is one migration, rewritten from the tables.
schema: install
	$(BIN)/python -m models.migrate --rewrite-initial

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache

# The targets the README, the pre-commit hook and CI call, so they never drift.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PANTAU := $(VENV)/bin/pantau

.PHONY: install demo up test test-unit test-integration lint format train-ner-id train-ner-en eval bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: install            ## the main job: the seed article through all three queues
	$(PANTAU) demo

up: install              ## a long-running deployment with the embedded Redis
	$(PANTAU) up

test: install            ## every test: unit, then integration (real Redis, real workers)
	$(PY) -m pytest -q -ra tests

test-unit: install
	$(PY) -m pytest -q tests/unit

test-integration: install
	$(PY) -m pytest -q tests/integration

lint: install
	$(VENV)/bin/ruff check workers tests
	$(VENV)/bin/ruff format --check workers tests
	$(VENV)/bin/mypy workers

format: install
	$(VENV)/bin/ruff format workers tests
	$(VENV)/bin/ruff check --fix workers tests

clean:
	rm -rf var build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache

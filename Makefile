# cswb - the few verbs a developer needs. Every target creates .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: install demo test lint format bench docs clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install cswb with its development tools

demo: $(STAMP) ## generate the demo city, ingest it and serve http://127.0.0.1:8000
	$(BIN)/cswb demo

test: $(STAMP) ## run the whole test suite
	$(BIN)/python -m pytest

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(STAMP) ## ingest benchmark at 10 million calls (several minutes)
	$(BIN)/python benchmarks/ingest.py

docs: $(STAMP) ## regenerate the generated reference pages in docs/
	$(BIN)/python -m cswb.docs

clean:
	rm -rf $(VENV) var build dist .pytest_cache .ruff_cache .mypy_cache

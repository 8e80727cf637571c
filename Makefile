# The two commands of the README. Both create .venv with the project's own dependencies.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install lint bench

$(BIN)/dripdrop: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[embedded,dev]'
	@touch $(BIN)/dripdrop

install: $(BIN)/dripdrop

demo: install
	$(BIN)/dripdrop demo

test: install
	$(BIN)/ruff check src tests
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests

bench: install
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/dispatch.py

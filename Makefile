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

.PHONY: dashboard-screenshots
# The dashboard's browser tests save every page at 1280 and 390 px (tests/dashboard/artifacts);
# this refreshes the copies docs/dashboard.md shows. Needs Chromium: apt-get install -y chromium
dashboard-screenshots: install
	$(BIN)/pytest -q -p no:cacheprovider tests/dashboard
	mkdir -p docs/img
	for f in tests/dashboard/artifacts/*.png; do cp "$$f" "docs/img/dashboard-$$(basename "$$f")"; done

# croupier: the two commands a newcomer needs are `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_WORKERS ?= 2
# pytest-xdist workers for `make test` (0: one process, as `pytest` alone runs); --dist loadfile keeps a
# module's tests on one worker, so a module's costly fixture (certify's certifications) is built once

.PHONY: demo test install install-test bench wallet clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## make demo: set up, start the reference wallet on SQLite, provision players, play, show them
demo: install
	$(BIN)/croupier demo

## make test: set up with the test extras and run the whole suite
test: install-test
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

## make wallet: serve the reference wallet on 127.0.0.1:8080 (SQLite file croupier-wallet.db)
wallet: install
	$(BIN)/croupier wallet serve

## make bench: the wallet's throughput and latency next to a bare aiohttp ceiling
bench: install
	$(BIN)/python bench/wallet.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis croupier-demo.db* croupier-wallet.db*

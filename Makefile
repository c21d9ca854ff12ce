# The two set-up commands: `make demo` (the whole local platform) and `make test` (every test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint lock clean

$(BIN)/.installed: setup.py requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/beam-ecommerce demo

test: $(BIN)/.installed
	$(BIN)/pytest -n 2 --durations=15

test-fast: $(BIN)/.installed
	$(BIN)/pytest -n 2 -m "not e2e"

lint: $(BIN)/.installed
	$(BIN)/pip install --quiet ruff
	$(BIN)/ruff check beam_ecommerce tests benchmarks

lock: $(BIN)/.installed
	$(BIN)/pip freeze --exclude-editable > requirements/constraints.txt

clean:
	rm -rf $(VENV) demo .pytest_cache

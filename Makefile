# The two set-up commands: `make demo` (the whole local platform) and `make test` (every test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Airflow 3 and checkov conflict with the main venv's pins: each has a venv of its own.
AIRFLOW_VENV ?= .venv-airflow
TOOLS_VENV ?= .venv-tools

# The lock for a Python version: requirements/constraints-X.Y.txt where that version needs
# its own (3.13), else requirements/constraints.txt (3.11 and 3.12 resolve the same set).
constraints_for = $(firstword $(wildcard requirements/constraints-$(1).txt) requirements/constraints.txt)
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys;print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
CONSTRAINTS := $(call constraints_for,$(PYTHON_VERSION))
# The other supported Pythons `make test-pythons` runs the fast suite on, each in .venv-X.Y.
OTHER_PYTHONS ?= 3.12 3.13
# An interpreter of version X.Y: pythonX.Y if it runs, else pyenv's newest X.Y.
python_for = $(shell python$(1) -c 'import sys;print(sys.executable)' 2>/dev/null \
	|| PYENV_VERSION=$$(pyenv versions --bare 2>/dev/null | grep -E '^$(subst .,\.,$(1))\.[0-9]+$$' | tail -n 1) \
	pyenv which python 2>/dev/null)

.PHONY: demo test test-fast test-pythons test-airflow lint lock airflow-lock tools-lock flex-templates terraform-schemas clean

$(BIN)/.installed: setup.py $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e '.[local,test]'
	touch $@

.venv-%/.installed: setup.py $(wildcard requirements/constraints*.txt)
	@test -n "$(call python_for,$*)" || { echo "no Python $* found: install it (pyenv install $*) or put python$* on the PATH"; exit 2; }
	rm -rf .venv-$*
	$(call python_for,$*) -m venv .venv-$*
	.venv-$*/bin/pip install --quiet --disable-pip-version-check -c $(call constraints_for,$*) -e '.[local,test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/beam-ecommerce demo

# Three workers on two cores: the stream and lock trials spend half their time waiting, and a
# third worker runs CPU-bound tests meanwhile. Whole files go to a worker, in the order
# tests/conftest.py sorts them (longest first); see its pytest_collection_modifyitems.
PYTEST_WORKERS = -n 3 --dist loadfile --no-loadscope-reorder

test: $(BIN)/.installed $(TOOLS_VENV)/.installed
	$(BIN)/pytest $(PYTEST_WORKERS) --durations=15
	$(MAKE) test-airflow

# The DAG tests, in Airflow's own venv (the main run ignores tests/airflow).
$(AIRFLOW_VENV)/.installed: airflow_dags/requirements.txt airflow_dags/requirements-test.txt airflow_dags/constraints.txt
	rm -rf $(AIRFLOW_VENV)
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet --disable-pip-version-check -c airflow_dags/constraints.txt \
		-r airflow_dags/requirements.txt -r airflow_dags/requirements-test.txt
	touch $@

test-airflow: $(AIRFLOW_VENV)/.installed
	$(AIRFLOW_VENV)/bin/pytest tests/airflow -o addopts="" -p no:cacheprovider -q

# checkov, hadolint and shellcheck for tests/deploy.
$(TOOLS_VENV)/.installed: tests/deploy/requirements-tools.txt tests/deploy/constraints-tools.txt
	rm -rf $(TOOLS_VENV)
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet --disable-pip-version-check -c tests/deploy/constraints-tools.txt \
		-r tests/deploy/requirements-tools.txt
	touch $@

test-fast: $(BIN)/.installed $(TOOLS_VENV)/.installed
	$(BIN)/pytest $(PYTEST_WORKERS) -m "not e2e"

# The fast suite (everything but the e2e tests) on every other supported Python; .ci/run
# runs it after `make test`. The tool checks need .venv-tools, which `make test` builds.
test-pythons: $(TOOLS_VENV)/.installed $(foreach version,$(OTHER_PYTHONS),.venv-$(version)/.installed)
	set -e; for version in $(OTHER_PYTHONS); do \
		echo "== the fast suite on Python $$version"; \
		.venv-$$version/bin/pytest $(PYTEST_WORKERS) -m "not e2e" -p no:cacheprovider -q; \
	done

lint: $(BIN)/.installed
	$(BIN)/pip install --quiet ruff
	$(BIN)/ruff check beam_ecommerce tests benchmarks templates airflow_dags terraform

lock: $(BIN)/.installed
	{ echo "# Every package version the project was tested with; pip installs with -c this file so a fresh"; \
	  echo "# machine resolves exactly the same set. Regenerate with: make lock"; \
	  $(BIN)/pip freeze --exclude-editable; } > $(CONSTRAINTS)

airflow-lock: $(AIRFLOW_VENV)/.installed
	{ echo "# Every package of .venv-airflow at the version its tests passed with (make airflow-lock regenerates it)."; \
	  $(AIRFLOW_VENV)/bin/pip freeze --exclude-editable; } > airflow_dags/constraints.txt

tools-lock: $(TOOLS_VENV)/.installed
	{ echo "# Every package of .venv-tools at the version the tests passed with (make tools-lock regenerates it)."; \
	  $(TOOLS_VENV)/bin/pip freeze --exclude-editable; } > tests/deploy/constraints-tools.txt

# Warehouse table schemas for Terraform, from the event contract (tests/deploy checks them).
terraform-schemas: $(BIN)/.installed
	$(BIN)/python terraform/generate_schemas.py

# Builds and publishes both Flex Templates (needs gcloud and an applied terraform/).
flex-templates:
	bash templates/build.sh

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) $(TOOLS_VENV) $(foreach version,$(OTHER_PYTHONS),.venv-$(version)) demo .pytest_cache

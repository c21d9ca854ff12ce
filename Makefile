# The two set-up commands: `make demo` (the whole local platform) and `make test` (every test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Airflow 3 and checkov conflict with the main venv's pins: each has a venv of its own.
AIRFLOW_VENV ?= .venv-airflow
TOOLS_VENV ?= .venv-tools

.PHONY: demo test test-fast test-airflow lint lock airflow-lock tools-lock flex-templates terraform-schemas clean

$(BIN)/.installed: setup.py requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[local,test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/beam-ecommerce demo

test: $(BIN)/.installed $(TOOLS_VENV)/.installed
	$(BIN)/pytest -n 2 --durations=15
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

test-fast: $(BIN)/.installed
	$(BIN)/pytest -n 2 -m "not e2e"

lint: $(BIN)/.installed
	$(BIN)/pip install --quiet ruff
	$(BIN)/ruff check beam_ecommerce tests benchmarks templates airflow_dags terraform

lock: $(BIN)/.installed
	{ echo "# Every package version the project was tested with; pip installs with -c this file so a fresh"; \
	  echo "# machine resolves exactly the same set. Regenerate with: make lock"; \
	  $(BIN)/pip freeze --exclude-editable; } > requirements/constraints.txt

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
	rm -rf $(VENV) $(AIRFLOW_VENV) $(TOOLS_VENV) demo .pytest_cache

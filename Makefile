# Every target works on a fresh clone with Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1:8000
# The demo shows the site's own error pages; DEBUG=true make run shows Django's instead.
DEBUG ?= false

.PHONY: run test lint format bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/pip || $(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

## run: set up and start the portal with demo data on SQLite (tasks run in-process)
run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py create_signing_key --if-missing
	$(BIN)/python manage.py seed_demo
	DEBUG=$(DEBUG) SITE_URL=http://$(HOST) $(BIN)/python manage.py runserver $(HOST)

## test: the whole suite (services it needs are skipped with a reason when absent)
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/verify.py
	$(BIN)/python bench/activation.py

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache build *.egg-info

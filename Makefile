# Two entry points on a fresh machine: `make demo` and `make test`.
# Both create the virtual environment when it is missing and install the package into it.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.alnm-installed
# Two test processes (pytest-xdist): every test pins torch to one thread (tests/conftest.py), so
# the two share two cores without oversubscribing them; the suite takes about 11 minutes
# on two cores instead of 17 in one process. `make test PYTEST_ARGS=` runs it in one process.
PYTEST_ARGS ?= -n 2

# torch and torchvision are pinned (the same pins as in setup.cfg).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

DOCS_STAMP := $(VENV)/.alnm-docs-installed

.PHONY: demo test install lint format clean bench docs

demo: install
	$(VENV)/bin/alnm demo --out alnm_demo

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# pyradiomics publishes no wheels for recent Pythons: its source build needs numpy and versioneer
# installed first and must see them, hence --no-build-isolation.
$(STAMP): $(PY) setup.cfg pyproject.toml
	$(PIP) install --upgrade pip setuptools wheel
	$(PIP) install numpy versioneer $(TORCH_PINS)
	$(PIP) install --no-build-isolation pyradiomics
	$(PIP) install -e '.[dev]'
	touch $(STAMP)

lint: install
	$(PY) -m ruff check sklearn_alnm tests benchmarks examples
	$(PY) -m ruff format --check sklearn_alnm tests benchmarks examples

format: install
	$(PY) -m ruff format sklearn_alnm tests benchmarks examples
	$(PY) -m ruff check --fix sklearn_alnm tests benchmarks examples

bench: install
	for script in benchmarks/bench_*.py; do $(PY) $$script || exit 1; done

# The documentation site (Sphinx, numpydoc, sphinx-gallery): every warning is an error; the
# gallery's examples run while it builds (ALNM_DOCS_PLOT=0 skips them). Works offline.
docs: $(DOCS_STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html
	@echo "documentation: docs/_build/html/index.html"

$(DOCS_STAMP): $(STAMP)
	$(PIP) install -e '.[dev,docs]'
	touch $(DOCS_STAMP)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache docs/_build docs/generated docs/auto_examples

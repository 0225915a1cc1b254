# Two entry points on a fresh machine: `make demo` and `make test`.
# Each bootstraps .venv from pyproject.toml (torch's PyPI build also runs on CPU).
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[dev]"
	touch $(STAMP)

.PHONY: install demo test
install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mmoe demo --out runs/demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q tests

# Quick start: `make demo` (the main job on the built-in LSTM) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SOURCES := pyproject.toml $(shell find lstm_symbolic -type f -not -name '*.pyc' 2>/dev/null)

.PHONY: demo test test-fast bench generate lint docs system-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: $(PY) $(SOURCES)
	$(PY) -m pip install -q .
	touch $@

$(VENV)/.installed-test: $(PY) $(SOURCES)
	$(PY) -m pip install -q ".[test]"
	touch $@ $(VENV)/.installed

system-deps:
	@bash scripts/system-deps.sh

demo: $(VENV)/.installed system-deps
	$(VENV)/bin/lstm-symbolic derive lstm --format text
	$(VENV)/bin/lstm-symbolic emit lstm --lang numpy -o out
	$(PY) -m lstm_symbolic.gradcheck out/lstm.py
	$(VENV)/bin/lstm-symbolic emit lstm --lang c -o out
	$(PY) -m lstm_symbolic.gradcheck out/lstm_c.py
	@if command -v pdflatex >/dev/null 2>&1; then \
	  $(VENV)/bin/lstm-symbolic derive lstm --steps --pdf -o out/lstm.tex; \
	else echo "pdflatex missing (texlive-latex-base): skipped out/lstm.pdf"; fi

test: $(VENV)/.installed-test system-deps
	$(PY) -m pytest

test-fast: $(VENV)/.installed-test system-deps
	$(PY) -m pytest -m "not slow"

bench: $(VENV)/.installed-test
	$(PY) bench/bench.py $(BENCH_ARGS)

generate: $(VENV)/.installed
	$(PY) -m lstm_symbolic generate

docs: $(VENV)/.installed-test
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html
	@echo "open docs/_build/html/index.html"

lint: $(VENV)/.installed-test
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) out build dist *.egg-info docs/_build

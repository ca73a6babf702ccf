# Suyuan: `make demo` runs the product, `make test` runs the whole suite.
# Both create .venv on first use and install what they need.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-supply bench-web clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m suyuan.demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 -q -o faulthandler_timeout=600

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) bench/ledger_bench.py

bench-supply: $(STAMP)
	$(PY) bench/supply_bench.py

# Consumer pages under gunicorn on a 1M-event world (built once into bench/out; uses wrk when
# installed: apt-get install wrk).
bench-web: $(STAMP)
	$(PY) bench/web_bench.py

clean:
	rm -rf $(VENV) build dist *.egg-info demo-data

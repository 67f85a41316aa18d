# Two entry points (see README): `make book` and `make test`.
# Each creates or refreshes the virtual environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv book demo test bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml .ci/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The constraints pin torch/torchvision to the releases on this machine's disk.
	$(PY) -m pip install --quiet -c .ci/constraints.txt -e ".[book,test]"
	touch $(STAMP)

demo: venv
	$(PY) -m gmmlib demo

book: venv
	$(PY) -m gmmlib demo

test: venv
	$(PY) -m pytest -n 2 --dist loadgroup

bench: venv
	$(PY) benchmarks/gmm_overhead.py

clean:
	rm -rf _build .pytest_cache

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

# The offline CIFAR-10 copy beside the checkout, when there is one; FULL-mode live demos use it.
export GMMLIB_DATA ?= $(abspath $(wildcard ../shared/data))

# The book: HTML in _build/html with every notebook executed in FULL mode. jupyter-cache
# re-executes only what changed (and everything when results/ change); any cell error or
# Sphinx warning fails the build (tools/build_book.py).
book: venv
	$(PY) tools/build_book.py

# Tests: the unit tests and every notebook in QUICK mode under nbmake, in parallel, on a staged
# copy of the book (not under _build/, which nbmake never collects) (nbmake --overwrite keeps the executed notebooks there, never in book/);
# then the browser check builds that copy's HTML without executing anything again and opens
# every page in headless Chromium (installed with apt-get when missing and root).
QUICK_SRC := test-artifacts/quick-book
NB_CELL_TIMEOUT ?= 600
test: venv
	$(PY) tools/build_book.py --stage $(QUICK_SRC)
	GMMLIB_QUICK=1 $(PY) -m pytest -n 2 --dist loadgroup -m "not browser" \
		--nbmake --nbmake-timeout=$(NB_CELL_TIMEOUT) --overwrite tests $(QUICK_SRC)/book
	GMMLIB_QUICK=1 $(PY) -m pytest -m browser tests/test_book_html.py

bench: venv
	$(PY) benchmarks/gmm_overhead.py

clean:
	rm -rf _build .pytest_cache test-artifacts

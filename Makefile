# pitap: the two commands a newcomer needs are `make demo` and `make test`.
# Another interpreter in a venv of its own: `make test PYTHON=python3.13 VENV=.venv-3.13`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint bench fuzz clean install

# (Re)create the venv and install the project when missing or when its packaging changed:
# the terminal (pitap, setup.py) and, for the demo and the tests, the simulators (pitap-sim,
# simulators/setup.py), a distribution of its own so that a terminal never carries them.
$(STAMP): setup.py pyproject.toml simulators/setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]' -e simulators
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/pitap demo

# mypy's configuration is in pyproject.toml ([tool.mypy]); its cache lives in the venv, so that
# the 3.11 and 3.13 venvs never share one.
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy --cache-dir $(VENV)/.mypy_cache
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy --cache-dir $(VENV)/.mypy_cache

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

fuzz: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,fuzz]' -e simulators
	@for f in tests/fuzz/fuzz_*.py; do echo "== $$f"; $(PY) $$f -max_total_time=$${FUZZ_SECONDS:-60} || exit 1; done

clean:
	rm -rf $(VENV) out var config/var build *.egg-info

# The field test (README, "Field provisioning"): a Raspberry Pi OS Lite-shaped base image made
# here from Debian arm64 (cached in build/field/), our image built on it with `pitap image
# build`, booted twice in qemu-system-aarch64 -M virt; needs root and the tools .ci/run installs.
.PHONY: field-image field-test
field-image: $(STAMP)
	$(PY) tests/field/fieldtest.py --stage base

field-test: $(STAMP)
	$(PY) tests/field/fieldtest.py

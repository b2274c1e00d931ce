# sortline: `make demo` for a short simulated shift, `make test` for the whole test suite.
# Both create the virtual environment and build the routing core first.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
APT_PACKAGES := mbpoll chromium fonts-wqy-microhei prometheus

.PHONY: demo test lint venv build os-packages browser-deps clean

demo: build
	$(PY) -m edge.cli demo

test: build os-packages browser-deps lint
	$(PY) -m pytest -q --durations=30

# ruff and mypy, with the rules and files named in pyproject.toml.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

venv: $(STAMP)

$(STAMP): setup.py pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-build-isolation -e .
	touch $@

build: $(STAMP)
	$(PY) setup.py -q build_ext --inplace

# OS packages the tests use as independent protocol peers (root installs them; others are told).
# `prometheus` is there for promtool only: the daemons it would enable and start are turned off.
os-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	    case " $$missing " in *" prometheus "*) systemctl disable --now prometheus prometheus-node-exporter \
	      >/dev/null 2>&1 || true;; esac; \
	  else echo "install these OS packages first: sudo apt-get install$$missing"; exit 1; fi; \
	fi

# The line screen's browser tests: Debian's chromium (os-packages) and playwright-core from the
# lock file; no browser is downloaded.
browser-deps: os-packages node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error

clean:
	rm -rf build $(VENV) fastpath/*.c fastpath/*.so *.egg-info

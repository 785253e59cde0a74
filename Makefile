# quantzoo: `make site` builds the catalog, `make test` runs every test.
# Each target installs what it needs into a local virtualenv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned and installed before the torch extra: here `torch==2.13.0` is the local CPU
# build, while letting pip resolve a bare `torch` would pull several GB of CUDA wheels.
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install site test bench serve browser espeak clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -e '.[dev,torch]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# Debian's chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's espeak-ng, pinned: the generated speech datasets are made with it (ARCHITECTURE.md,
# "Generated audio"); their manifests name this version and refuse another.
ESPEAK_VERSION ?= 1.51+dfsg-10+deb12u2
espeak:
	@test "$$(dpkg-query -W -f='$${Version}' espeak-ng 2>/dev/null)" = "$(ESPEAK_VERSION)" || { \
	  echo "installing Debian espeak-ng $(ESPEAK_VERSION) for the generated speech datasets"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng=$(ESPEAK_VERSION) >/dev/null; }

site: install espeak
	$(VENV)/bin/quantzoo build --site-dir site
	@echo "site built: $(CURDIR)/site/index.html  (make serve to browse it)"

test: install browser espeak
	$(PY) -m pytest -q

bench: install
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/run.py

serve:
	@test -f site/index.html || { echo "no site yet: run make site first"; exit 1; }
	$(PY) -m http.server --bind 127.0.0.1 --directory site 8000

clean:
	rm -rf site .pytest_cache

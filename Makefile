# SlicerHub: `make demo` runs the platform, `make test` runs every test.
# Both set up what they need on a fresh Debian machine (root for system packages).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
LDAP_PORT ?= 3389
PYTEST_ARGS ?=

.PHONY: demo test test-unit test-integration test-e2e bench images monailabel-image deps system-deps check-config guide-pictures clean

demo: deps images
	$(PY) -m slicerhub.devenv.demo --port $(PORT) --ldap-port $(LDAP_PORT)

test: deps images
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: deps
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: deps images
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

bench: deps
	$(PY) -m benchmarks $(BENCH_ARGS)

# The user guide's pictures, from the screenshots of the last test run.
guide-pictures: $(VENV)/.installed
	$(PY) scripts/guide-pictures.py

check-config: $(VENV)/.installed
	$(VENV)/bin/slicerhub config check $(or $(FILE),hub_config/demo.yaml)

images: deps
	@echo "==> Images"
	$(PY) -m slicerhub.devenv.images slicer-core orthanc

# MONAI Label (torch, several GB) is not built by `make images` / `make test`:
# its tests run when this image exists (docs/companions.md).
monailabel-image: deps
	$(PY) -m slicerhub.devenv.images monailabel

deps: system-deps $(VENV)/.installed node_modules/.installed

system-deps:
	@bash scripts/install-system-deps.sh

$(VENV)/.installed: pyproject.toml constraints.txt
	@echo "==> Python environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt -e ".[test]"
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "==> configurable-http-proxy (npm ci)"
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

clean:
	rm -rf $(VENV) node_modules build *.egg-info
	@echo "var/ (demo directory, hub database) and Docker volumes are kept; remove them by hand."

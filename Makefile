# One command each: `make demo` (set up + ingest the examples + search), `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DATA ?= .mmrag-demo
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup browser test test-all demo lint bench examples clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# Headless Chromium for the chat-page tests, from Debian (Playwright drives it through
# executable_path; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$(test "$$(id -u)" -eq 0 || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

test: setup browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy rag ingest api cli mcpserver
	$(PY) -m pytest -q

test-all: setup browser
	$(PY) -m pytest -q -m "slow or not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy rag ingest api cli mcpserver

examples: setup
	$(PY) examples/make_examples.py

demo: setup
	$(VENV)/bin/mmrag ingest examples/corpus --collection demo --profile offline --data-dir $(DEMO_DATA)
	$(VENV)/bin/mmrag search "how do I rotate TLS certificates" --collection demo --profile offline --data-dir $(DEMO_DATA) --limit 3
	$(VENV)/bin/mmrag search "why did name resolution fail in the outage" --collection demo --profile offline --data-dir $(DEMO_DATA) --limit 3
	$(VENV)/bin/mmrag eval examples/queries.jsonl --collection demo --profile offline --data-dir $(DEMO_DATA)

bench: setup
	$(PY) benchmarks/bench_store.py
	$(PY) benchmarks/bench_pipeline.py
	$(PY) benchmarks/bench_mcp.py

clean:
	rm -rf $(DEMO_DATA) .pytest_cache

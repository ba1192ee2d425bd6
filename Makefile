# One command each: `make demo` (set up + ingest the examples + search), `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DATA ?= .mmrag-demo
PACKAGES := rag ingest pipeline policy api cli configs $(wildcard mcpserver)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup browser espeak test test-slow test-all check-install demo lint bench examples eval eval-test clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,ray]'
	touch $@

setup: $(VENV)/.installed espeak

# espeak-ng (Debian) speaks the narration of the test, eval and example videos; the
# video and audio tests skip with this hint when it is missing.
espeak:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  SUDO=$$(test "$$(id -u)" -eq 0 || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq espeak-ng; }

# The fast tier: lint, types, unit + integration tests (no subprocess fleets, no servers).
test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(PACKAGES)
	$(PY) -m pytest -q -m "not slow"

# Headless Chromium for the chat-page tests (slow tier), from Debian: Playwright drives
# it through executable_path; no browser download.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$(test "$$(id -u)" -eq 0 || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

# The slow tier: CLI subprocesses, real uvicorn servers, the full example eval, the
# MCP stdio server and the chat page in Chromium.
test-slow: setup browser
	$(PY) -m pytest -q -m slow

test-all: test test-slow check-install

# `pip install .` (not editable) into a fresh venv, then run the CLI from another
# folder: catches package data (configs/, static files) missing from the wheel. The
# fresh venv borrows the dependencies of $(VENV) through a .pth line, so nothing is
# downloaded twice.
CHECK_VENV ?= /tmp/mmrag-check-install
check-install: setup
	rm -rf $(CHECK_VENV) && python3 -m venv $(CHECK_VENV)
	$(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" \
		> $$($(CHECK_VENV)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/mmrag-deps.pth
	$(CHECK_VENV)/bin/python -m pip install --quiet --no-deps .
	cd /tmp && HF_HUB_OFFLINE=1 $(CHECK_VENV)/bin/mmrag collections --profile offline \
		--data-dir $(CHECK_VENV)/data
	cd /tmp && $(CHECK_VENV)/bin/python -c "import pipeline, rag; assert '$(CURDIR)' not in pipeline.__file__, pipeline.__file__; print('installed from', pipeline.__file__)"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(PACKAGES)

examples: setup
	$(PY) examples/make_examples.py

demo: setup
	$(VENV)/bin/mmrag ingest examples/corpus --collection demo --profile offline --data-dir $(DEMO_DATA)
	$(VENV)/bin/mmrag search "how do I rotate TLS certificates" --collection demo --profile offline --data-dir $(DEMO_DATA) --limit 3
	$(VENV)/bin/mmrag search "why did name resolution fail in the outage" --collection demo --profile offline --data-dir $(DEMO_DATA) --limit 3
	$(VENV)/bin/mmrag search "when is the coffee machine descaled" --collection demo --profile offline --data-dir $(DEMO_DATA) --limit 3
	$(VENV)/bin/mmrag eval examples/queries.jsonl --collection demo --profile offline --data-dir $(DEMO_DATA)

# Retrieval quality on the man-page eval set (README, "Evaluation"). The first run builds
# eval/corpus from this machine's man pages and ingests it (OCR: minutes); later runs
# re-use eval/.cache. `make eval-test` reports the held-out split.
eval/corpus: eval/sources.tsv eval/make_eval_set.py
	$(PY) eval/make_eval_set.py
	touch $@

eval/.cache/base: eval/corpus
	$(PY) eval/run_eval.py --ingest --split dev

eval: setup eval/.cache/base
	$(PY) eval/run_eval.py --split dev
	$(PY) eval/naive_baseline.py --split dev

eval-test: setup eval/.cache/base
	$(PY) eval/run_eval.py --split test

bench: setup
	$(PY) benchmarks/bench_store.py
	$(PY) benchmarks/bench_pipeline.py
	$(PY) benchmarks/bench_api.py
	$(PY) benchmarks/bench_quantization.py --sizes 20000 100000
	$(PY) benchmarks/bench_encoders.py
	$(PY) benchmarks/bench_mcp.py

clean:
	rm -rf $(DEMO_DATA) .pytest_cache

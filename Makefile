# One command each: `make demo` (set up + ingest the examples + search), `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DATA ?= .mmrag-demo
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup test test-all demo lint bench examples eval eval-test clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy rag ingest api cli
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m "slow or not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy rag ingest api cli

examples: setup
	$(PY) examples/make_examples.py

demo: setup
	$(VENV)/bin/mmrag ingest examples/corpus --collection demo --profile offline --data-dir $(DEMO_DATA)
	$(VENV)/bin/mmrag search "how do I rotate TLS certificates" --collection demo --profile offline --data-dir $(DEMO_DATA) --limit 3
	$(VENV)/bin/mmrag search "why did name resolution fail in the outage" --collection demo --profile offline --data-dir $(DEMO_DATA) --limit 3
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

clean:
	rm -rf $(DEMO_DATA) .pytest_cache

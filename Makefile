# Set-up and everyday commands. `make run` starts the app; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export TOKENIZERS_PARALLELISM := false
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: run test test-all index lint bench-setup bench-piaf clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch first, so nothing pulls the multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[ui,test]'
	touch $(STAMP)

index: $(STAMP)
	$(BIN)/rag build

run: $(STAMP)
	$(BIN)/rag serve --host $${RAG_HOST:-127.0.0.1} --port $${RAG_PORT:-7860}

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

# What the benchmarks need beyond the tests (the scale plot, the weight fitting).
bench-setup: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[ui,test,bench]'

bench-piaf: bench-setup
	$(BIN)/python bench/piaf.py --split even

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

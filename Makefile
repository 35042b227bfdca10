# Two commands do all the set-up on a fresh machine:
#   make demo   creates .venv, installs neurohash, trains the default model on Greengenes, reports
#   make test   creates .venv, installs neurohash with test tools, runs the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0

.PHONY: install demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

# Without a GPU, install the pinned CPU build of torch first: a bare `torch` requirement would
# pull several GB of CUDA wheels.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	if command -v nvidia-smi >/dev/null 2>&1; then \
		$(BIN)/pip install torch; \
	else \
		$(BIN)/pip install torch==$(TORCH_VERSION); \
	fi
	$(BIN)/pip install -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# train on Greengenes, then the whole database path on 5,000 Greengenes sequences: predict.py
# (hash shards), neurohash index, neurohash search --rerank of 200 held-out sequences, scored
# against exact edit distance (recall@10, speed-up over an exact scan)
demo: install
	$(BIN)/python train.py hydra.run.dir=logs/demo
	@echo "run directory: logs/demo (metrics.json, pred_vs_true.png, checkpoints/)"
	$(BIN)/python -c "import json; m = json.load(open('logs/demo/metrics.json')); \
	print(f\"test %RMSE {m['test/rmse_pct']:.2f}  (k-mer baseline {m['baseline/rmse_pct']:.2f})\")"
	$(BIN)/python bench/search.py --ckpt logs/demo/checkpoints/last.ckpt --db-size 5000 \
		--queries 200 --workdir logs/demo/search --out logs/demo/bench_search.json

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) logs .cache .pytest_cache

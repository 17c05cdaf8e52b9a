# make demo  — set up .venv if needed, then run the quickstart study and print where its report is.
# make test  — set up .venv if needed, then run the whole test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The demo needs trainlab's own dependencies only; the tests also install the extras they exercise (Ray,
# MLflow, TensorBoard, torchao, ONNX: about 1.5 GB more), so every path is tested.
DEMO_STAMP := $(VENV)/.installed-demo
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench clean setup

setup: $(STAMP)

$(DEMO_STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP) $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/trainlab run recipes/quickstart.toml

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/loop_overhead.py

clean:
	rm -rf runs .pytest_cache

# voicegender: `make demo` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DEMO := demo_output

.PHONY: demo test lint venv clean benchmark

$(VENV)/.installed: requirements.txt requirements-dev.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

venv: $(VENV)/.installed

demo: venv
	rm -rf $(DEMO)
	$(PY) -m beam_jobs.make_sample_corpus --output_dir=$(DEMO)/corpus
	$(PY) -m beam_jobs.preprocess --flagfile=configs/sample_preprocess.flags \
		--cv_dir=$(DEMO)/corpus --output_dir=$(DEMO)/data
	$(PY) -m model.train --flagfile=configs/local.flags \
		--data_dir=$(DEMO)/data --model_dir=$(DEMO)/model
	@echo "Demo done: TFRecords in $(DEMO)/data; model, curves and SavedModel in $(DEMO)/model"

test: venv
	$(PY) -m ruff check .
	$(PY) -m pytest -q tests

lint: venv
	$(PY) -m ruff check .

benchmark: venv
	$(PY) benchmarks/preprocess.py
	$(PY) benchmarks/input_pipeline.py

clean:
	rm -rf $(VENV) $(DEMO) *.egg-info

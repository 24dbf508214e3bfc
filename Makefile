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
	$(PY) -m model.evaluate --model_dir=$(DEMO)/model --data_dir=$(DEMO)/data --split=test
	@echo "The shipped pretrained model (trained on real speech) on three sample clips:"
	$(PY) -m model.predict $(DEMO)/corpus/en/clips/synthetic_en_00001.mp3 \
		$(DEMO)/corpus/en/clips/synthetic_en_00025.mp3 $(DEMO)/corpus/de/clips/synthetic_de_00001.mp3
	@echo "Demo done: TFRecords in $(DEMO)/data; model, curves, SavedModel, LiteRT and eval in $(DEMO)/model"

test: venv
	$(PY) -m ruff check .
	$(PY) -m pytest -q tests

lint: venv
	$(PY) -m ruff check .

benchmark: venv
	$(PY) benchmarks/preprocess.py
	$(PY) benchmarks/input_pipeline.py
	$(PY) -m benchmarks.scale

clean:
	rm -rf $(VENV) $(DEMO) *.egg-info

# voicegender: `make demo` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DEMO := demo_output
BENCH := benchmark_output
SHARED := ../shared/data

.PHONY: demo test test-fast lint venv clean benchmark

# Everything `make test` uses: the package with all its extras (pyproject.toml is the one declaration).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	rm -rf $(DEMO)
	$(PY) -m beam_jobs.make_sample_corpus --output_dir=$(DEMO)/corpus
	$(VENV)/bin/voicegender preprocess --flagfile=configs/sample_preprocess.flags \
		--cv_dir=$(DEMO)/corpus --output_dir=$(DEMO)/data
	$(VENV)/bin/voicegender train --flagfile=configs/local.flags \
		--data_dir=$(DEMO)/data --model_dir=$(DEMO)/model
	$(VENV)/bin/voicegender evaluate --model_dir=$(DEMO)/model --data_dir=$(DEMO)/data --split=test
	@echo "The shipped pretrained model (trained on real speech) on three sample clips:"
	$(VENV)/bin/voicegender predict $(DEMO)/corpus/en/clips/synthetic_en_00001.mp3 \
		$(DEMO)/corpus/en/clips/synthetic_en_00025.mp3 $(DEMO)/corpus/de/clips/synthetic_de_00001.mp3
	@echo "The model this demo trained (calibrated on its validation speakers), on the same clips:"
	$(VENV)/bin/voicegender predict --model_dir=$(DEMO)/model $(DEMO)/corpus/en/clips/synthetic_en_00001.mp3 \
		$(DEMO)/corpus/en/clips/synthetic_en_00025.mp3 $(DEMO)/corpus/de/clips/synthetic_de_00001.mp3
	@echo "Demo done: TFRecords in $(DEMO)/data; model, curves, SavedModel, LiteRT and eval in $(DEMO)/model"

test: venv
	$(PY) -m ruff check .
	$(PY) -m pytest -q tests

# Everything but the tests marked slow (multi-process Beam, subprocess training, benchmarks): under a minute.
test-fast: venv
	$(PY) -m ruff check .
	$(PY) -m pytest -q -m "not slow" tests

lint: venv
	$(PY) -m ruff check .

# Every benchmark, at full size (hours on 2 cores; figures in WORKSPACE.md). Real speech from $(SHARED) when
# present, else generated clips; the held-out-clip benchmarks (baselines, robustness, cnn_design) run on
# $(BENCH)/data, the job's output for those corpora.
benchmark: venv
	$(PY) -m benchmarks.preprocess
	$(PY) -m benchmarks.input_pipeline
	$(PY) -m benchmarks.inference
	$(PY) -m benchmarks.scale
	$(PY) -m benchmarks.vad
	$(PY) -m benchmarks.segments
	$(PY) -m benchmarks.calibration --work_dir=$(BENCH)/calibration
	$(PY) -m benchmarks.augmentation
	$(PY) -m benchmarks.expressive
	$(PY) -m benchmarks.ina_features
	rm -rf $(BENCH)
	if [ -d $(SHARED)/commonvoice-6.1-sample ]; then \
		$(PY) -m beam_jobs.preprocess --flagfile=configs/preprocess.flags --output_dir=$(BENCH)/data \
			--cv_dir=$(SHARED)/commonvoice-6.1-sample --cv_dir=$(SHARED)/duke-alphanumeric \
			--cv_dir=$(SHARED)/librispeech-sample; \
	else \
		$(PY) -m beam_jobs.make_sample_corpus --output_dir=$(BENCH)/corpus && \
		$(PY) -m beam_jobs.preprocess --flagfile=configs/sample_preprocess.flags --cv_dir=$(BENCH)/corpus \
			--output_dir=$(BENCH)/data; \
	fi
	$(PY) -m benchmarks.baselines --data_dir=$(BENCH)/data
	$(PY) -m benchmarks.robustness --data_dir=$(BENCH)/data --model=shipped=model/pretrained
	$(PY) -m benchmarks.cnn_design --data_dir=$(BENCH)/data --work_dir=$(BENCH)/cnn_design

clean:
	rm -rf $(VENV) $(DEMO) $(BENCH) *.egg-info

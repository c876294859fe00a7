# Two commands set up everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
STAMP := .cache/installed.stamp

.PHONY: install system-deps demo test bench-compression bench-multilingual clean test-js node-deps

# Debian packages for the classic speech engines (flite, espeak-ng) and sox; ffmpeg decodes the real-speech
# prompts (G.722) and npm packs the JFK clip; skipped when present.
system-deps:
	@command -v flite >/dev/null && command -v espeak-ng >/dev/null && command -v sox >/dev/null && \
	  command -v ffmpeg >/dev/null && command -v npm >/dev/null || \
	  { apt-get update && apt-get install -y flite espeak-ng sox ffmpeg && { command -v npm >/dev/null || apt-get install -y npm; }; }

# torch first, pinned: 2.13.0 is the CPU wheel on disk; an unpinned torch pulls gigabytes of CUDA.
$(STAMP): pyproject.toml
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[test,demo]"
	@mkdir -p .cache && touch $(STAMP)

install: system-deps $(STAMP)

demo: install
	$(PYTHON) conversion/demo.py

test: install
	$(PYTHON) -m pytest -q

# Node.js and npm for the transformers.js test; skipped when present (Node 18+ is needed).
node-deps:
	@command -v node >/dev/null && command -v npm >/dev/null || { apt-get update && apt-get install -y nodejs npm; }

# ONNX export of real tiny.en (lite and dense), onnxruntime vs PyTorch, and the real transformers.js client in
# Node (npm install of a pinned @huggingface/transformers, cached in the test cache) on the exported folders.
test-js: install node-deps
	$(PYTHON) -m pytest -q -m "onnx or js" tests/test_onnx_export.py

bench-compression: install
	lite-whisper bench-compression

# English-only vs multilingual calibration of whisper base, WER on synthesized, real English, fr, es, it (greedy)
bench-multilingual: install
	lite-whisper bench-compression --thresholds --no-one-shot --targets 0.85 0.7 --num-samples 64 \
	  --calibrations en=synthesized mix=synthesized,fr-calibration,es-calibration,it-calibration \
	  --real-speech --json bench-multilingual.json

clean:
	rm -rf .cache build dist src/*.egg-info

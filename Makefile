# Two commands set up everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
STAMP := .cache/installed.stamp

.PHONY: install system-deps demo test test-compat bench-compression bench-multilingual clean test-js node-deps \
	browser-deps test-web test-gpu-check test-long

# Debian packages for the classic speech engines (flite, espeak-ng) and sox; ffmpeg decodes the real-speech
# prompts (G.722) and is how the ASR pipeline reads audio files by name (the model card's snippets); npm packs the
# JFK clip; skipped when present.
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

# The integration runs over a minute each (iterative rounds, two processes, recovery on unseen speech, base):
# not part of `make test`, run by .ci/run.
test-long: install
	$(PYTHON) -m pytest -q -m long

# The Hub payload under the last transformers 4.x as well (not part of `make test`): a venv that sees this
# environment's packages and overrides only transformers and what it pins (huggingface_hub, tokenizers).
# test_compat.py runs our folders under both versions side by side (table in .cache/compat-report.md), then the
# payload tests run inside the 4.x venv. The fixtures are built by the current environment first.
COMPAT_TRANSFORMERS ?= 4.57.6
COMPAT_VENV := .cache/compat-transformers-$(COMPAT_TRANSFORMERS)
COMPAT_PYTHON := $(COMPAT_VENV)/bin/python
# In 4.57 besides: loading from a folder and a Hub cache without lite_whisper, pipeline timestamps and chunked
# long-form equal to Whisper's own (test_compat.py covers sequential long-form in both versions).
COMPAT_TESTS := tests/test_modeling_payload.py tests/test_modeling_pipeline.py::test_timestamps \
	"tests/test_modeling_pipeline.py::test_audio_longer_than_60s[chunked]"

$(COMPAT_VENV)/.installed: $(STAMP)
	rm -rf $(COMPAT_VENV)
	$(PYTHON) -m venv --without-pip --system-site-packages $(COMPAT_VENV)
	$(PYTHON) -c "import sys; print('\n'.join(p for p in sys.path if p.endswith(('site-packages', 'dist-packages'))))" \
	  > "$$($(COMPAT_PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_parent_env.pth"
	$(PIP) --python $(COMPAT_PYTHON) install -q "transformers==$(COMPAT_TRANSFORMERS)"
	@touch $@

test-compat: install $(COMPAT_VENV)/.installed
	LITE_WHISPER_COMPAT_PYTHON="$(abspath $(COMPAT_PYTHON))" LITE_WHISPER_COMPAT_REPORT=.cache/compat-report.md \
	  $(PYTHON) -m pytest -q -m compat
	$(COMPAT_PYTHON) -m pytest -q -p no:cacheprovider $(COMPAT_TESTS)
	@cat .cache/compat-report.md

# Node.js and npm for the transformers.js test; skipped when present (Node 18+ is needed).
node-deps:
	@command -v node >/dev/null && command -v npm >/dev/null || { apt-get update && apt-get install -y nodejs npm; }

# ONNX export of real tiny.en (lite and dense), onnxruntime vs PyTorch, and the real transformers.js client in
# Node (npm install of a pinned @huggingface/transformers, cached in the test cache) on the exported folders.
test-js: install node-deps
	$(PYTHON) -m pytest -q -m "onnx or js" tests/test_onnx_export.py

# Debian's Chromium and its WebDriver for the browser test; skipped when present.
browser-deps:
	@test -x /usr/bin/chromium && test -x /usr/bin/chromedriver || \
	  { apt-get update && apt-get install -y chromium chromium-driver; }

# The browser page (`lite-whisper serve-web`) in headless Chromium: a lite tiny.en (LiteASR thresholds, ~1 min) and
# the dense one exported to ONNX (cached in the test cache), transformers.js and onnxruntime-web from npm (pinned,
# cached); the page's transcripts must equal onnxruntime's greedy output in Python. A few minutes.
test-web: install node-deps browser-deps
	$(PYTHON) -m pytest -q -m web tests/test_web.py


# conversion/gpu_check.py (the CUDA path at real shapes, random weights) run as a dry run on CPU at tiny shapes.
test-gpu-check: install
	$(PYTHON) -m pytest -q -m gpucheck tests/test_gpu_check.py

bench-compression: install
	lite-whisper bench-compression

# English-only vs multilingual calibration of whisper base, WER on synthesized, real English, fr, es, it (greedy)
bench-multilingual: install
	lite-whisper bench-compression --thresholds --no-one-shot --targets 0.85 0.7 --num-samples 64 \
	  --calibrations en=synthesized mix=synthesized,fr-calibration,es-calibration,it-calibration \
	  --real-speech --json bench-multilingual.json

clean:
	rm -rf .cache build dist src/*.egg-info

"""Other formats in and out: CTranslate2 Whisper checkpoints (ctranslate2.py), LiteASR checkpoints (liteasr.py),
ONNX for transformers.js (onnx/) and the browser page that runs it (browser.py, web_packages.py, web/)."""

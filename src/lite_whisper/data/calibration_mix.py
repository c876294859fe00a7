"""Calibration on several datasets at once (e.g. English + French + Spanish + Italian): how they are mixed.

`--calibration` takes one dataset or several (repeat the flag, or a comma list). The mix is:
- **equal shares**: `num_samples` clips split as evenly as possible over the datasets (the first ones get the
  remainder); a dataset with fewer clips than its share gives all it has and the others fill the gap, in turn;
- **interleaved**: clips alternate a, b, c, a, b, c, ... (then the longer datasets' surplus), so every batch,
  every packed window, and the first windows that the budget modes use for their spectra
  (`--allocation-samples`) and sensitivity probes (`--probe-samples`) already mix all the datasets.

Each dataset's language is read from its metadata (`language` or `locale` column, as the real-speech sets and
Common Voice have); conversion.json records it per dataset, and the model card lists the languages.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .audio import METADATA_FILES, AudioSample, load_audio_dataset

LANGUAGE_COLUMNS = ("language", "locale", "lang")


@dataclass
class CalibrationPart:
    dataset: str
    language: str | None
    clips: int


def split_sources(calibration: str | Sequence[str]) -> list[str]:
    """Dataset names from one string or several, each possibly a comma list; order kept, duplicates refused."""
    items = [calibration] if isinstance(calibration, (str, Path)) else list(calibration)
    names = [part.strip() for item in items for part in str(item).split(",") if part.strip()]
    if not names:
        raise ValueError("no calibration dataset given: pass --calibration DATASET (repeat it, or a comma list)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"calibration dataset(s) given twice: {', '.join(repeated)}")
    return names


def equal_shares(total: int, available: Sequence[int]) -> list[int]:
    """`total` clips shared as evenly as possible among datasets holding `available` clips each."""
    shares = [0] * len(available)
    remaining = min(total, sum(available))
    while remaining > 0:
        open_ = [i for i, have in enumerate(available) if shares[i] < have]
        each, extra = divmod(remaining, len(open_))
        for rank, i in enumerate(open_):
            give = min(each + (rank < extra), available[i] - shares[i])
            shares[i] += give
            remaining -= give
    return shares


def interleave(groups: Sequence[Sequence[AudioSample]]) -> list[AudioSample]:
    """a0, b0, c0, a1, b1, c1, ...; a longer group's surplus follows in the same round-robin."""
    longest = max((len(g) for g in groups), default=0)
    return [group[i] for i in range(longest) for group in groups if i < len(group)]


def dataset_language(source: str, split: str = "train") -> str | None:
    """The language a local audiofolder's metadata declares (one value for all rows), else None."""
    folder = Path(source)
    for base in (folder / split, folder):
        for name in METADATA_FILES:
            path = base / name
            if path.is_file():
                with open(path, encoding="utf-8", newline="") as f:
                    rows = list(csv.DictReader(f)) if path.suffix == ".csv" else [json.loads(l) for l in f if l.strip()]
                column = next((c for c in LANGUAGE_COLUMNS if rows and c in rows[0]), None)
                values = {str(row.get(column)) for row in rows if row.get(column)} if column else set()
                return values.pop() if len(values) == 1 else ("+".join(sorted(values)) or None)
    return None


def load_calibration_mix(calibration: str | Sequence[str], num_samples: int, *, config: str | None = None,
                         split: str = "train", text_column: str | None = None, keep_undecodable: bool = False,
                         ) -> tuple[list[AudioSample], list[CalibrationPart]]:
    """The calibration clips of one or several datasets, mixed (see the module doc), and what each gave.
    `keep_undecodable`: see load_audio_dataset (convert checks every clip, data/clip_checks.py)."""
    sources = split_sources(calibration)
    if len(sources) == 1:
        samples = load_audio_dataset(sources[0], config=config, split=split, text_column=text_column,
                                     max_samples=num_samples, keep_undecodable=keep_undecodable)
        return samples, [CalibrationPart(sources[0], dataset_language(sources[0], split), len(samples))]
    # Each dataset loads at most num_samples clips: enough for any share, including filling others' gaps.
    loaded = [load_audio_dataset(s, config=config, split=split, text_column=text_column, max_samples=num_samples,
                                 keep_undecodable=keep_undecodable) for s in sources]
    empty = [s for s, clips in zip(sources, loaded) if not clips]
    if empty:
        raise ValueError(f"no audio found in calibration dataset(s) {', '.join(empty)} (split {split!r})")
    shares = equal_shares(num_samples, [len(clips) for clips in loaded])
    picked = [clips[:share] for clips, share in zip(loaded, shares)]
    parts = [CalibrationPart(s, dataset_language(s, split), len(p)) for s, p in zip(sources, picked)]
    return interleave(picked), parts

"""Calibration on several datasets at once (e.g. English + French + Spanish + Italian): how they are mixed.

`--calibration` takes one dataset or several (repeat the flag, or a comma list). The mix is:
- **equal shares**: `num_samples` clips split as evenly as possible over the datasets (the first ones get the
  remainder); a dataset with fewer clips than its share gives all it has and the others fill the gap, in turn;
- **interleaved**: clips alternate a, b, c, a, b, c, ... (then the longer datasets' surplus), so every batch,
  every packed window, and the first windows that the budget modes use for their spectra
  (`--allocation-samples`) and sensitivity probes (`--probe-samples`) already mix all the datasets.

The clips are drawn lazily, one from each dataset in turn, so a streamed Hub dataset is read no further than its
share (plus what fills another's gap). A name in `recipes.RECIPES` (`esb`) stands for its parts. Hub datasets
(and local parquet folders) are shuffled with `shuffle_buffer` and `seed`; local audiofolders are read in order.

Each dataset's language is read from its metadata (`language` or `locale` column, as the real-speech sets and
Common Voice have); conversion.json records it per dataset with what pins the clips (config, split, revision,
rows skipped, clip ids), and the model card lists the languages.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from lite_whisper.data.audio import METADATA_FILES, AudioSample, dataset_source, is_audiofolder, iter_audio_dataset
from lite_whisper.data.hub_datasets import DatasetSource, resolve_source
from lite_whisper.data.pool import read_pool_summary
from lite_whisper.data.recipes import RECIPES

LANGUAGE_COLUMNS = ("language", "locale", "lang")


@dataclass
class CalibrationPart:
    dataset: str
    language: str | None
    clips: int
    config: str | None = None
    split: str | None = None
    revision: str | None = None  # the Hub commit sha read
    skip: int = 0
    ids: list[str] = field(default_factory=list)  # the clips used, in the order read
    pool: dict | None = None  # a calibration pool's POOL.json (data/pool.py): its sources, speakers and licenses


Source = str | DatasetSource  # a local audiofolder, or a dataset read through `datasets` (resolved)


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


def resolve_calibration(calibration: Source | Sequence[Source], config: str | None = None,
                        split: str | None = None) -> list[Source]:
    """Each calibration dataset: recipes expanded, Hub datasets (and parquet folders) checked and pinned
    (`resolve_source`, seconds, no data read), local audiofolders as they are. Resolved sources pass through."""
    items = [calibration] if isinstance(calibration, (str, Path, DatasetSource)) else list(calibration)
    resolved: list[Source] = []
    for item in items:
        if isinstance(item, DatasetSource):
            resolved.append(item)
            continue
        for name in split_sources(item):
            if name in RECIPES and not Path(name).exists():
                resolved += [resolve_source(source) for source in RECIPES[name].sources]
            elif is_audiofolder(name, split):
                resolved.append(name)
            else:
                resolved.append(resolve_source(dataset_source(name, config, split)))
    return resolved


def draw_round_robin(streams: Sequence[Iterator[AudioSample]], total: int) -> list[list[AudioSample]]:
    """One clip from each stream in turn until `total`: equal shares (the first streams get the remainder), a
    short stream's gap filled by the others; nothing is read beyond that. A progress bar counts the clips."""
    picked: list[list[AudioSample]] = [[] for _ in streams]
    open_, count, read = list(range(len(streams))), 0, 0
    with tqdm(total=total, desc="calibration clips", unit="clip") as bar:
        while open_ and count < total:
            for i in list(open_):
                sample = next(streams[i], None) if count < total else None
                if sample is None:
                    open_.remove(i)
                    continue
                picked[i].append(sample)
                count, read = count + 1, read + sample.nbytes
                bar.update()
                if read:
                    bar.set_postfix_str(f"{read / 1e6:.1f} MB read")
    return picked


def _label(source: Source) -> str:
    if isinstance(source, DatasetSource):
        return f"{source.dataset}" + (f" ({source.config}/{source.split})" if source.config else f" ({source.split})")
    return str(source)


def _part(source: Source, split: str | None, samples: list[AudioSample]) -> CalibrationPart:
    ids = [s.id for s in samples]
    if isinstance(source, DatasetSource):
        return CalibrationPart(source.dataset, None, len(samples), source.config, source.split, source.revision,
                               source.skip, ids)
    return CalibrationPart(source, dataset_language(source, split or "train"), len(samples), split=split, ids=ids,
                           pool=read_pool_summary(source))


def load_calibration_mix(calibration: Source | Sequence[Source], num_samples: int, *, config: str | None = None,
                         split: str | None = None, text_column: str | None = None, audio_column: str | None = None,
                         shuffle_buffer: int = 0, seed: int = 42, keep_undecodable: bool = False,
                         ) -> tuple[list[AudioSample], list[CalibrationPart]]:
    """The calibration clips of one or several datasets, mixed (see the module doc), and what each gave.
    `keep_undecodable`: see load_audio_dataset (convert checks every clip, data/clip_checks.py)."""
    sources = resolve_calibration(calibration, config, split)
    streams = [iter_audio_dataset(s, split=split, text_column=text_column, audio_column=audio_column,
                                  shuffle_buffer=shuffle_buffer, seed=seed, keep_undecodable=keep_undecodable)
               for s in sources]
    picked = draw_round_robin(streams, num_samples)
    empty = [_label(s) for s, clips in zip(sources, picked) if not clips and len(sources) <= num_samples]
    if empty:
        raise ValueError(f"no audio found in calibration dataset(s) {', '.join(empty)}")
    return interleave(picked), [_part(s, split, clips) for s, clips in zip(sources, picked)]

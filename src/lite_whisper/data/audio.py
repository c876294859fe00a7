"""Load speech datasets for calibration and evaluation as 16 kHz mono float32 arrays with their transcripts.

Two sources:
- a local *audiofolder* (audio files + `metadata.jsonl` or `metadata.csv` with `file_name` and a text column),
  e.g. what `lite_whisper.data.synthesis.synthesize_dataset` writes;
- a dataset on the Hub (or a local folder of parquet files), through `datasets.load_dataset`.

Decoding is done here with soundfile, not by `datasets`: datasets 5.x decodes (and, when it builds an audiofolder,
*encodes*) audio through torchcodec, which is not installed / whose wheel needs CUDA libraries on our machines. So
Hub datasets are read with `Audio(decode=False)` and decoded from their bytes or path; local audiofolders are read
from their metadata file directly, since `load_dataset("audiofolder", ...)` fails without torchcodec (checked with
datasets 5.2: "To support encoding audio data, please install 'torchcodec'").
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import soundfile as sf
import soxr
from datasets import Audio, load_dataset

SAMPLE_RATE = 16_000
METADATA_FILES = ("metadata.jsonl", "metadata.csv")
# Transcript column names in common speech datasets (LibriSpeech, Common Voice, FLEURS, SPGISpeech, VoxPopuli, ...).
TEXT_COLUMNS = ("text", "sentence", "transcription", "transcript", "raw_text", "normalized_text", "raw_transcription")
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


@dataclass
class AudioSample:
    """One utterance: `array` is float32 mono at 16 kHz; `text` is None when the dataset has no transcript.
    `sampling_rate` is the source's rate before resampling, `path` the file (or the dataset row's path), and
    `problem` says why the clip did not decode (only with `keep_undecodable`; `array` is then empty)."""

    id: str
    array: np.ndarray
    text: str | None
    sampling_rate: int | None = None
    path: str | None = None
    problem: str | None = None

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.array) / SAMPLE_RATE


def to_mono_16k(audio: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Downmix (frames, channels) or (frames,) audio to mono and resample it to 16 kHz float32."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if sampling_rate != SAMPLE_RATE:
        audio = soxr.resample(audio, sampling_rate, SAMPLE_RATE)
    return np.ascontiguousarray(audio, dtype=np.float32)


def read_audio(source: str | Path | bytes) -> tuple[np.ndarray, int]:
    """Decode an audio file (path or encoded bytes) to 16 kHz mono float32; also its own sampling rate."""
    handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    audio, rate = sf.read(handle, dtype="float32", always_2d=True)
    return to_mono_16k(audio, rate), rate


def decode_audio(source: str | Path | bytes) -> np.ndarray:
    """Decode an audio file (path or encoded bytes: WAV, FLAC, OGG, MP3, ...) to 16 kHz mono float32."""
    return read_audio(source)[0]


def _sample(source, id: str, text, where: str, keep_undecodable: bool) -> AudioSample:
    """The decoded clip; one that does not decode raises naming it, or (`keep_undecodable`) comes back empty
    with its `problem`, for the caller to count and skip."""
    try:
        array, rate = read_audio(source)
    except Exception as err:  # soundfile's LibsndfileError / TypeError on non-audio bytes, truncated files
        problem = f"does not decode as audio ({type(err).__name__}: {err})"
        if not keep_undecodable:
            raise ValueError(f"{where} {problem}: replace the file, or remove its row from the metadata") from err
        return AudioSample(id=id, array=np.zeros(0, dtype=np.float32), text=text, path=where, problem=problem)
    return AudioSample(id=id, array=array, text=text, sampling_rate=rate, path=where)


def _pick_text_column(columns: Iterable[str], text_column: str | None, where: str) -> str | None:
    columns = list(columns)
    if text_column is not None:
        if text_column not in columns:
            raise ValueError(f"text column {text_column!r} not in {where}; its columns are: {', '.join(columns)}")
        return text_column
    return next((name for name in TEXT_COLUMNS if name in columns), None)


# --- local audiofolder ---------------------------------------------------------------------------


def _find_metadata(folder: Path, split: str) -> Path:
    """`folder/<split>/metadata.*` if the audiofolder has split subfolders, else `folder/metadata.*`."""
    for base in (folder / split, folder):
        for name in METADATA_FILES:
            if (base / name).is_file():
                return base / name
    raise FileNotFoundError(
        f"no {' or '.join(METADATA_FILES)} in {folder}: an audiofolder needs a metadata file with a `file_name` "
        "column (audio paths relative to it) and a transcript column such as `text`"
    )


def _read_metadata(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8", newline="") as f:
        if path.suffix == ".csv":
            return list(csv.DictReader(f))
        try:
            return [json.loads(line) for line in f if line.strip()]
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON Lines: {err}") from err


def _iter_audiofolder(folder: Path, split: str, text_column: str | None,
                      keep_undecodable: bool = False) -> Iterator[AudioSample]:
    metadata = _find_metadata(folder, split)
    rows = _read_metadata(metadata)
    columns = list(rows[0]) if rows else []
    if "file_name" not in columns:
        raise ValueError(f"{metadata} has no `file_name` column (columns: {', '.join(columns) or 'none'})")
    text_key = _pick_text_column(columns, text_column, str(metadata))
    for row in rows:
        path = metadata.parent / row["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"audio file {row['file_name']!r} listed in {metadata} is missing ({path})")
        text = row.get(text_key) if text_key else None
        yield _sample(path, str(row.get("id") or row["file_name"]), text, f"audio file {path}", keep_undecodable)


# --- datasets (Hub or local data files) ----------------------------------------------------------


def _iter_datasets(source: str, config: str | None, split: str, text_column: str | None, streaming: bool,
                   keep_undecodable: bool = False):
    try:
        dataset = load_dataset(source, config, split=split, streaming=streaming)
    except (ConnectionError, OSError) as err:  # includes DatasetNotFoundError and offline errors
        raise FileNotFoundError(
            f"datasets.load_dataset({source!r}) failed ({err}); a local audiofolder must be an existing folder"
        ) from err
    features = dataset.features or {}
    audio_columns = [name for name, feature in features.items() if isinstance(feature, Audio)]
    if not audio_columns:
        raise ValueError(f"dataset {source!r} has no Audio column; its columns are: {', '.join(features)}")
    audio_column = audio_columns[0]
    text_key = _pick_text_column(features, text_column, f"dataset {source!r}")
    dataset = dataset.cast_column(audio_column, Audio(decode=False))  # skip torchcodec; soundfile decodes
    for index, row in enumerate(dataset):
        encoded = row[audio_column]
        text = row[text_key] if text_key else None
        where = f"clip {index} ({encoded.get('path') or 'no path'}) of dataset {source!r}"
        yield _sample(encoded["bytes"] if encoded.get("bytes") else encoded["path"],
                      str(row.get("id") or encoded.get("path") or index), text, where, keep_undecodable)


# --- entry points --------------------------------------------------------------------------------


def iter_audio_dataset(
    source: str | Path,
    *,
    config: str | None = None,
    split: str = "test",
    text_column: str | None = None,
    max_samples: int | None = None,
    streaming: bool = False,
    keep_undecodable: bool = False,
) -> Iterator[AudioSample]:
    """Yield the samples of a local audiofolder or a `datasets` dataset (see `load_audio_dataset`)."""
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"max_samples must be at least 1 (or None for all), got {max_samples}")
    path = Path(source).expanduser()
    if path.is_dir():
        if _has_metadata(path, split) or not any(path.glob("**/*.parquet")):
            samples: Iterator[AudioSample] = _iter_audiofolder(path, split, text_column, keep_undecodable)
        else:  # a local copy of a Hub dataset repository (parquet data files)
            samples = _iter_datasets(str(path), config, split, text_column, streaming, keep_undecodable)
    elif not path.exists() and _HUB_ID.match(str(source)) and not str(source).startswith("."):
        samples = _iter_datasets(str(source), config, split, text_column, streaming, keep_undecodable)
    else:
        raise FileNotFoundError(f"no such folder: {source} (expected an audiofolder with metadata.jsonl/csv)")
    for count, sample in enumerate(samples):
        if max_samples is not None and count >= max_samples:
            return
        yield sample


def _has_metadata(folder: Path, split: str) -> bool:
    return any((base / name).is_file() for base in (folder / split, folder) for name in METADATA_FILES)


def load_audio_dataset(
    source: str | Path,
    *,
    config: str | None = None,
    split: str = "test",
    text_column: str | None = None,
    max_samples: int | None = None,
    streaming: bool = False,
    keep_undecodable: bool = False,
) -> list[AudioSample]:
    """Load speech as 16 kHz mono float32 `AudioSample`s (id, array, text), in dataset order.

    `source` is a local audiofolder (a folder with `metadata.jsonl` or `metadata.csv` holding `file_name` and a
    transcript column; `split` selects `source/<split>/` when such a subfolder has the metadata) or a dataset id
    for `datasets.load_dataset(source, config, split=split)` (a local folder of parquet files works too).
    The transcript column is auto-detected among TEXT_COLUMNS unless `text_column` names it; without one, `text`
    is None. `max_samples` keeps the first N; `streaming` avoids downloading a whole Hub split for a few samples.
    A clip that does not decode raises ValueError naming it, unless `keep_undecodable` (then it comes back empty,
    its `problem` set: calibration counts and skips such clips, data/clip_checks.py).
    """
    return list(
        iter_audio_dataset(
            source, config=config, split=split, text_column=text_column, max_samples=max_samples, streaming=streaming,
            keep_undecodable=keep_undecodable,
        )
    )

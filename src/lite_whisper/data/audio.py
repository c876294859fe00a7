"""Load speech datasets for calibration and evaluation as 16 kHz mono float32 arrays with their transcripts.

Two sources:
- a local *audiofolder* (audio files + `metadata.jsonl` or `metadata.csv` with `file_name` and a text column),
  e.g. what `lite_whisper.data.synthesis.synthesize_dataset` writes;
- a dataset on the Hub (or a local folder of parquet files), through `datasets.load_dataset`, always streamed,
  checked first by `hub_datasets.resolve_source`.

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

from lite_whisper.data.hub_datasets import SPLIT_ORDER, DatasetSource, resolve_source

SAMPLE_RATE = 16_000
METADATA_FILES = ("metadata.jsonl", "metadata.csv")
# Transcript column names in common speech datasets (LibriSpeech, Common Voice, FLEURS, SPGISpeech, VoxPopuli, ...).
TEXT_COLUMNS = ("text", "sentence", "transcription", "transcript", "raw_text", "normalized_text", "raw_transcription")
AUDIO_COLUMNS = ("audio",)
# Who speaks (held-out slices take whole speakers): our sets' `speaker`, LibriSpeech's, Common Voice's columns.
SPEAKER_COLUMNS = ("speaker", "speaker_id", "client_id")
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


@dataclass
class AudioSample:
    """One utterance: `array` is float32 mono at 16 kHz; `text` is None when the dataset has no transcript.
    `sampling_rate` is the source's rate before resampling, `path` the file (or the dataset row's path), and
    `problem` says why the clip did not decode (only with `keep_undecodable`; `array` is then empty)."""

    id: str
    array: np.ndarray
    text: str | None
    nbytes: int = 0  # encoded size, as read (streamed datasets; for the progress bar)
    sampling_rate: int | None = None
    path: str | None = None
    problem: str | None = None
    speaker: str | None = None

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


def speaker_of(row: dict) -> str | None:
    """The row's speaker (SPEAKER_COLUMNS), as a string, or None."""
    value = next((row[name] for name in SPEAKER_COLUMNS if row.get(name) is not None), None)
    return None if value is None else str(value)


def _sample(source, id: str, text, where: str, keep_undecodable: bool, nbytes: int = 0,
            speaker: str | None = None) -> AudioSample:
    """The decoded clip; one that does not decode raises naming it, or (`keep_undecodable`) comes back empty
    with its `problem`, for the caller to count and skip."""
    try:
        array, rate = read_audio(source)
    except Exception as err:  # soundfile's LibsndfileError / TypeError on non-audio bytes, truncated files
        problem = f"does not decode as audio ({type(err).__name__}: {err})"
        if not keep_undecodable:
            raise ValueError(f"{where} {problem}: replace the file, or remove its row from the metadata") from err
        return AudioSample(id=id, array=np.zeros(0, dtype=np.float32), text=text, path=where, problem=problem,
                           speaker=speaker)
    return AudioSample(id=id, array=array, text=text, nbytes=nbytes, sampling_rate=rate, path=where, speaker=speaker)


def pick_text_column(columns: Iterable[str], text_column: str | None, where: str) -> str | None:
    columns = list(columns)
    if text_column is not None:
        if text_column not in columns:
            raise ValueError(f"text column {text_column!r} not in {where}; its columns are: {', '.join(columns)}")
        return text_column
    return next((name for name in TEXT_COLUMNS if name in columns), None)


# --- local audiofolder ---------------------------------------------------------------------------


def _split_folders(folder: Path, split: str | None) -> list[Path]:
    """Where a split's metadata may be: `folder/<split>/` (no split given: train, validation, test), `folder/`."""
    return [folder / name for name in ([split] if split else SPLIT_ORDER)] + [folder]


def _find_metadata(folder: Path, split: str | None) -> Path:
    """`folder/<split>/metadata.*` if the audiofolder has split subfolders, else `folder/metadata.*`."""
    for base in _split_folders(folder, split):
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


def _iter_audiofolder(folder: Path, split: str | None, text_column: str | None,
                      keep_undecodable: bool = False) -> Iterator[AudioSample]:
    metadata = _find_metadata(folder, split)
    rows = _read_metadata(metadata)
    columns = list(rows[0]) if rows else []
    if "file_name" not in columns:
        raise ValueError(f"{metadata} has no `file_name` column (columns: {', '.join(columns) or 'none'})")
    text_key = pick_text_column(columns, text_column, str(metadata))
    for row in rows:
        path = metadata.parent / row["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"audio file {row['file_name']!r} listed in {metadata} is missing ({path})")
        text = row.get(text_key) if text_key else None
        yield _sample(path, str(row.get("id") or row["file_name"]), text, f"audio file {path}", keep_undecodable,
                      speaker=speaker_of(row))


# --- datasets (Hub or local data files) ----------------------------------------------------------


def pick_audio_column(features, audio_column: str | None, where: str) -> str:
    """The audio column: `audio_column` if given, else the first `Audio` feature, else one named `audio`."""
    features = dict(features or {})
    if audio_column is not None:
        if audio_column not in features:
            raise ValueError(f"audio column {audio_column!r} not in {where}; its columns are: {', '.join(features)}")
        return audio_column
    from datasets import Audio  # where used: see hub_datasets (datasets needs huggingface_hub >= 1.31)

    found = [name for name, feature in features.items() if isinstance(feature, Audio)]
    found += [name for name in AUDIO_COLUMNS if name in features and name not in found]
    if not found:
        raise ValueError(f"{where} has no audio column (an Audio feature or one named `audio`); its columns are: "
                         f"{', '.join(features) or 'none'}. Name it with --audio-column")
    return found[0]


def stream_dataset(source: DatasetSource, *, audio_column: str | None = None, text_column: str | None = None,
                   shuffle_buffer: int = 0, seed: int = 0):
    """The rows of `source`, streamed (only the shards read that the rows taken need), with its audio column
    left encoded (soundfile decodes: no torchcodec), `skip` rows dropped, then shuffled; and the two column names."""
    from datasets import Audio, load_dataset

    dataset = load_dataset(source.dataset, source.config, split=source.split, revision=source.revision,
                           streaming=True)
    where = f"dataset {source.dataset!r}" + (f" (config {source.config!r})" if source.config else "")
    audio_key = pick_audio_column(dataset.features, audio_column, where)
    text_key = pick_text_column(dataset.features or {}, text_column, where)
    dataset = dataset.cast_column(audio_key, Audio(decode=False))
    if source.skip:  # before the shuffle: the rows skipped are the dataset's first ones
        dataset = dataset.skip(source.skip)
    if shuffle_buffer:
        dataset = dataset.shuffle(seed=seed, buffer_size=shuffle_buffer)
    return dataset, audio_key, text_key


def _iter_datasets(source: DatasetSource, audio_column: str | None, text_column: str | None, shuffle_buffer: int,
                   seed: int, keep_undecodable: bool = False) -> Iterator[AudioSample]:
    dataset, audio_key, text_key = stream_dataset(source, audio_column=audio_column, text_column=text_column,
                                                  shuffle_buffer=shuffle_buffer, seed=seed)
    for index, row in enumerate(dataset):
        encoded = row[audio_key]
        data = encoded["bytes"] if encoded.get("bytes") else encoded["path"]
        text = row[text_key] if text_key else None
        where = f"clip {index} ({encoded.get('path') or 'no path'}) of dataset {source.dataset!r}"
        yield _sample(data, str(row.get("id") or encoded.get("path") or index), text, where, keep_undecodable,
                      nbytes=len(data) if isinstance(data, (bytes, bytearray)) else 0, speaker=speaker_of(row))


# --- entry points --------------------------------------------------------------------------------


def iter_audio_dataset(
    source: str | Path | DatasetSource,
    *,
    config: str | None = None,
    split: str | None = "test",
    text_column: str | None = None,
    audio_column: str | None = None,
    max_samples: int | None = None,
    shuffle_buffer: int = 0,
    seed: int = 0,
    keep_undecodable: bool = False,
) -> Iterator[AudioSample]:
    """Yield the samples of a local audiofolder or a `datasets` dataset (see `load_audio_dataset`).

    A `datasets` source given by name is resolved first (checked on the Hub, split chosen: `resolve_source`)."""
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"max_samples must be at least 1 (or None for all), got {max_samples}")
    if isinstance(source, DatasetSource):
        samples = _iter_datasets(source, audio_column, text_column, shuffle_buffer, seed, keep_undecodable)
    elif is_audiofolder(source, split):
        samples = _iter_audiofolder(Path(source).expanduser(), split, text_column, keep_undecodable)
    else:
        resolved = resolve_source(dataset_source(source, config, split))
        samples = _iter_datasets(resolved, audio_column, text_column, shuffle_buffer, seed, keep_undecodable)
    for count, sample in enumerate(samples):
        if max_samples is not None and count >= max_samples:
            return
        yield sample


def is_audiofolder(source: str | Path, split: str | None) -> bool:
    """A local folder read from its metadata file (not a folder of parquet files)."""
    path = Path(source).expanduser()
    return path.is_dir() and (_has_metadata(path, split) or not any(path.glob("**/*.parquet")))


def dataset_source(source: str | Path, config: str | None = None, split: str | None = None,
                   skip: int = 0) -> DatasetSource:
    """A `datasets` source from a name: an existing folder of parquet files or a Hub id."""
    path = Path(source).expanduser()
    if not path.exists() and not (_HUB_ID.match(str(source)) and not str(source).startswith(".")):
        raise FileNotFoundError(f"no such folder: {source} (expected an audiofolder with metadata.jsonl/csv)")
    return DatasetSource(str(path) if path.exists() else str(source), config, split, skip)


def _has_metadata(folder: Path, split: str | None) -> bool:
    return any((base / name).is_file() for base in _split_folders(folder, split) for name in METADATA_FILES)


def load_audio_dataset(source: str | Path | DatasetSource, **options) -> list[AudioSample]:
    """Load speech as 16 kHz mono float32 `AudioSample`s (id, array, text); `options` are iter_audio_dataset's.

    `source` is a local audiofolder (a folder with `metadata.jsonl` or `metadata.csv` holding `file_name` and a
    transcript column; `split` selects `source/<split>/` when such a subfolder has the metadata), read in its
    order, or a dataset for `datasets.load_dataset(source, config, split=split, streaming=True)` (a Hub id or a
    local folder of parquet files; `split=None`: the first of train, validation, test), read in dataset order or,
    with `shuffle_buffer` > 0, shuffled with `seed`. The transcript column is auto-detected among TEXT_COLUMNS
    unless `text_column` names it (without one, `text` is None); the audio column likewise (`audio_column`).
    `max_samples` keeps the first N, and a streamed dataset reads no more than they need.
    A clip that does not decode raises ValueError naming it, unless `keep_undecodable` (then it comes back empty,
    its `problem` set: calibration counts and skips such clips, data/clip_checks.py).
    """
    return list(iter_audio_dataset(source, **options))

"""Loading audio datasets: local audiofolders (jsonl/csv metadata), `datasets` data files, resampling, errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lite_whisper.data.audio import SAMPLE_RATE, decode_audio, load_audio_dataset, to_mono_16k


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


def test_loads_synthesized_audiofolder(speech_test_dir):
    rows = _rows(speech_test_dir)
    samples = load_audio_dataset(speech_test_dir)
    assert [s.text for s in samples] == [row["text"] for row in rows]
    assert [s.id for s in samples] == [row["id"] for row in rows]
    for sample, row in zip(samples, rows):
        assert sample.array.dtype == np.float32 and sample.array.ndim == 1
        assert len(sample.array) == sf.info(speech_test_dir / row["file_name"]).frames  # already 16 kHz: untouched
    assert len(load_audio_dataset(speech_test_dir, max_samples=3)) == 3


def test_csv_metadata_stereo_44k_and_text_column(tmp_path, speech_calibration_dir):
    row = _rows(speech_calibration_dir)[0]
    mono, rate = sf.read(speech_calibration_dir / row["file_name"], dtype="float32")
    assert rate == SAMPLE_RATE
    # A 44.1 kHz stereo FLAC in a subfolder, with its transcript under another common column name.
    from soxr import resample

    left = resample(mono, SAMPLE_RATE, 44_100)
    (tmp_path / "clips").mkdir()
    sf.write(tmp_path / "clips" / "a.flac", np.stack([left, 0.5 * left], axis=1), 44_100)
    with open(tmp_path / "metadata.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerows([["file_name", "sentence"], ["clips/a.flac", row["text"]]])
    [sample] = load_audio_dataset(tmp_path)
    assert sample.text == row["text"] and sample.id == "clips/a.flac"
    assert abs(len(sample.array) - len(mono)) <= 2  # back at 16 kHz
    expected = 0.75 * mono  # mean of the two channels
    assert np.corrcoef(sample.array[: len(mono)], expected[: len(sample.array)])[0, 1] > 0.99
    assert np.sqrt(np.mean(sample.array**2)) == pytest.approx(np.sqrt(np.mean(expected**2)), rel=0.05)
    assert load_audio_dataset(tmp_path, text_column="file_name")[0].text == "clips/a.flac"


def test_to_mono_16k_lengths():
    stereo = np.zeros((48_000, 2), dtype=np.float64)
    assert to_mono_16k(stereo, 48_000).shape == (16_000,)
    assert to_mono_16k(np.zeros(8_000), 8_000).dtype == np.float32
    assert len(to_mono_16k(np.zeros(8_000), 8_000)) == 16_000


def test_split_subfolder_and_missing_text(tmp_path, speech_calibration_dir):
    row = _rows(speech_calibration_dir)[1]
    (tmp_path / "test").mkdir()
    shutil.copy(speech_calibration_dir / row["file_name"], tmp_path / "test" / "x.wav")
    (tmp_path / "test" / "metadata.jsonl").write_text(json.dumps({"file_name": "x.wav", "speaker": "s1"}) + "\n")
    [sample] = load_audio_dataset(tmp_path, split="test")
    assert sample.text is None  # no transcript column: fine for calibration
    assert np.array_equal(sample.array, decode_audio(speech_calibration_dir / row["file_name"]))


def test_datasets_branch_with_local_parquet(tmp_path, speech_calibration_dir):
    """A folder of parquet files goes through `datasets.load_dataset` (the Hub code path, offline)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _rows(speech_calibration_dir)[:3]
    table = pa.table({
        "audio": [{"bytes": (speech_calibration_dir / r["file_name"]).read_bytes(), "path": r["file_name"]}
                  for r in rows],
        "transcription": [r["text"] for r in rows],
    })
    features = {"audio": {"_type": "Audio"}, "transcription": {"dtype": "string", "_type": "Value"}}
    table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    (tmp_path / "data").mkdir()
    pq.write_table(table, tmp_path / "data" / "test-00000-of-00001.parquet")
    samples = load_audio_dataset(tmp_path, split="test", max_samples=2)
    assert [s.text for s in samples] == [r["text"] for r in rows[:2]]
    assert np.array_equal(samples[0].array, decode_audio(speech_calibration_dir / rows[0]["file_name"]))


def test_clear_errors(tmp_path, speech_calibration_dir):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_audio_dataset(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="metadata.jsonl or metadata.csv"):
        load_audio_dataset(tmp_path)
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"path": "a.wav", "text": "hi"}) + "\n")
    with pytest.raises(ValueError, match="no `file_name` column"):
        load_audio_dataset(tmp_path)
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "a.wav", "text": "hi"}) + "\n")
    with pytest.raises(FileNotFoundError, match="'a.wav' .* is missing"):
        load_audio_dataset(tmp_path)
    with pytest.raises(ValueError, match="text column 'words' not in .*file_name, text"):
        load_audio_dataset(speech_calibration_dir, text_column="words")

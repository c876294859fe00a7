"""Offline speech synthesis: deterministic, disjoint splits, valid audiofolder, noise at the requested SNR."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lite_whisper.data import synthesis as speech
from lite_whisper.data.synthesis import SAMPLE_RATE, add_noise, load_sentences, split_sentences, synthesize_dataset

ROOT = Path(__file__).resolve().parents[1]


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


def _bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_sentence_list_is_clean_and_large():
    sentences = load_sentences()
    assert len(sentences) >= 300
    assert len(set(sentences)) == len(sentences), "duplicate sentences"
    for sentence in sentences:
        assert 5 <= len(sentence.split()) <= 25, sentence
        assert not any(ch.isdigit() for ch in sentence), f"digits are ambiguous for normalizers: {sentence}"


def test_splits_are_disjoint_and_cover_all():
    calibration, test, everything = (set(split_sentences(name)) for name in ("calibration", "test", "all"))
    assert calibration and test
    assert not calibration & test
    assert calibration | test == everything
    assert 0.3 < len(calibration) / len(everything) < 0.5
    with pytest.raises(ValueError, match="unknown split"):
        split_sentences("train")


def test_fixture_sets_are_valid_audiofolders_with_disjoint_sentences(speech_test_dir, speech_calibration_dir):
    texts = {}
    for folder, count, split in ((speech_test_dir, 24, "test"), (speech_calibration_dir, 16, "calibration")):
        rows = _rows(folder)
        wavs = sorted(path.name for path in folder.glob("*.wav"))
        assert len(rows) == count and sorted(row["file_name"] for row in rows) == wavs
        assert {row["engine"] for row in rows} == {"piper", "flite"}  # the default engines, both used
        assert set(row["text"] for row in rows) <= set(split_sentences(split))
        texts[split] = {row["text"] for row in rows}
        for row in rows:
            info = sf.info(folder / row["file_name"])
            assert (info.samplerate, info.channels, info.subtype, info.format) == (SAMPLE_RATE, 1, "PCM_16", "WAV")
            assert 0.8 < info.duration < 15, row  # speech, neither empty nor runaway
    assert not texts["test"] & texts["calibration"]


def test_synthesis_is_deterministic_and_seeded(tmp_path):
    kwargs = dict(num_utterances=4, split="calibration", engines=("piper", "flite"), progress=False)
    first = _bytes(synthesize_dataset(tmp_path / "a", seed=7, **kwargs))
    again = _bytes(synthesize_dataset(tmp_path / "b", seed=7, **kwargs))
    other = _bytes(synthesize_dataset(tmp_path / "c", seed=8, **kwargs))
    assert first == again
    assert first.keys() == other.keys()
    assert [name for name in first if first[name] != other[name]] == sorted(first), "a file did not change with seed"
    assert not list(tmp_path.glob(".*.tmp")), "staging folder left behind"


def test_engines_voices_and_noise(tmp_path):
    clean = synthesize_dataset(tmp_path / "clean", 6, "test", seed=3, engines=("flite", "espeak"), progress=False)
    noisy = synthesize_dataset(
        tmp_path / "noisy", 6, "test", seed=3, engines=("flite", "espeak"), noise_snr_db=10.0, progress=False
    )
    rows = _rows(clean)
    assert [row["engine"] for row in rows] == ["flite", "espeak"] * 3
    assert len({row["voice"] for row in rows}) == 6  # each engine cycles through its voices
    assert [row["text"] for row in rows] == [row["text"] for row in _rows(noisy)]  # noise changes only the audio
    for row in rows:
        signal, _ = sf.read(clean / row["file_name"], dtype="float64")
        mixed, _ = sf.read(noisy / row["file_name"], dtype="float64")
        noise = mixed - signal
        snr = 10 * np.log10(np.mean(signal**2) / np.mean(noise**2))
        assert abs(snr - 10.0) < 0.5, (row, snr)


def test_add_noise_hits_the_snr():
    tone = np.sin(np.linspace(0, 2000 * np.pi, SAMPLE_RATE)).astype(np.float32) * 0.5
    noisy = add_noise(tone, 20.0, np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(tone.astype(np.float64) ** 2) / np.mean((noisy - tone).astype(np.float64) ** 2))
    assert abs(snr - 20.0) < 0.2


def test_clear_errors(tmp_path, monkeypatch):
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        synthesize_dataset(tmp_path / "taken", 2)
    with pytest.raises(ValueError, match="unknown engine"):
        synthesize_dataset(tmp_path / "x", 2, engines=("festival",))
    with pytest.raises(ValueError, match="unknown split"):
        synthesize_dataset(tmp_path / "x", 2, split="train")
    monkeypatch.setattr(speech.shutil, "which", lambda program: None)
    with pytest.raises(speech.MissingEngineError, match="apt-get install -y flite"):
        synthesize_dataset(tmp_path / "x", 2, engines=("flite",), progress=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taken"], "nothing left behind on error"


def test_cli_and_script(tmp_path):
    from lite_whisper.cli import main

    assert main(["synthesize", "--output", str(tmp_path / "cli"), "--num", "2", "--engines", "flite",
                 "--split", "calibration", "--seed", "4", "--noise-snr", "30"]) == 0
    rows = _rows(tmp_path / "cli")
    assert len(rows) == 2 and {row["snr_db"] for row in rows} == {30.0}
    assert main(["synthesize", "--output", str(tmp_path / "cli"), "--num", "2"]) == 2  # exists: clean error
    script = subprocess.run(
        [sys.executable, str(ROOT / "conversion" / "synthesize_speech.py"), "--output", str(tmp_path / "script"),
         "--num", "2", "--engines", "flite", "--split", "calibration", "--seed", "4", "--noise-snr", "30"],
        capture_output=True, text=True,
    )
    assert script.returncode == 0, script.stderr
    assert _bytes(tmp_path / "script") == _bytes(tmp_path / "cli")

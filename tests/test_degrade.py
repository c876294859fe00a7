"""Degraded speech for calibration: every clip changed by its recorded chain, texts kept, seeded."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from lite_whisper.data.degrade import babble, degraded_copy, telephone


def _rows(folder):
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


def test_degraded_copy_keeps_the_texts_and_changes_every_clip(speech_calibration_dir, tmp_path):
    out = degraded_copy(speech_calibration_dir, tmp_path / "degraded", seed=3, progress=False)
    clean, dirty = _rows(speech_calibration_dir), _rows(out)
    assert [r["text"] for r in dirty] == [r["text"] for r in clean]
    assert all(r["degradation"] for r in dirty)
    for row in dirty:
        a, rate = sf.read(speech_calibration_dir / row["file_name"], dtype="float32")
        b, _ = sf.read(out / row["file_name"], dtype="float32")
        assert rate == 16000 and np.isfinite(b).all() and np.abs(b).max() <= 1.0
        assert a.shape != b.shape or not np.allclose(a, b, atol=1e-3)
    again = degraded_copy(speech_calibration_dir, tmp_path / "again", seed=3, progress=False)
    assert [r["degradation"] for r in _rows(again)] == [r["degradation"] for r in dirty]
    assert {r["degradation"] for r in _rows(degraded_copy(speech_calibration_dir, tmp_path / "other", seed=4,
                                                          progress=False))} != {r["degradation"] for r in dirty}


def test_telephone_removes_the_high_band_and_babble_adds_voices():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 6000 * t) + 0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    narrow, _ = telephone(tone, rng)
    spectrum = np.abs(np.fft.rfft(narrow[: len(t)]))
    assert spectrum[6000] < 0.05 * spectrum[1000]  # 6 kHz gone, 1 kHz kept
    mixed, what = babble(tone, rng, [tone[::-1].copy(), np.roll(tone, 4000), np.roll(tone, 9000)])
    assert "voices" in what and not np.allclose(mixed, tone)

"""Real Whisper (imported from PyPI packages) transcribes synthesized speech through the standard pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lite_whisper.wer import normalize, word_error_rate

SAMPLE_RATE = 16_000


def load_audiofolder(folder: Path) -> tuple[list[np.ndarray], list[str]]:
    """16 kHz mono float32 arrays and reference texts of an audiofolder (decoded with soundfile, not torchcodec)."""
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text(encoding="utf-8").splitlines() if line]
    audio = []
    for row in rows:
        samples, rate = sf.read(folder / row["file_name"], dtype="float32")
        assert rate == SAMPLE_RATE and samples.ndim == 1, row["file_name"]
        audio.append(samples)
    return audio, [row["text"] for row in rows]


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["tiny_en_dir", pytest.param("base_dir", marks=pytest.mark.long)])
def test_pipeline_transcribes_synthesized_speech(request, fixture, speech_test_dir):
    from transformers import pipeline

    audio, references = load_audiofolder(speech_test_dir)
    assert len(audio) >= 16
    audio, references = audio[:16], references[:16]  # enough words (~200) for a WER bound; base is slow on CPU
    asr = pipeline("automatic-speech-recognition", model=str(request.getfixturevalue(fixture)))
    # No `language` for the multilingual base: it must detect English and transcribe (forced task token).
    # Greedy decoding keeps the test fast (the pipeline's default is 5 beams, ~3x the time).
    samples = [{"raw": a, "sampling_rate": SAMPLE_RATE} for a in audio]
    outputs = asr(samples, batch_size=8, generate_kwargs={"num_beams": 1})
    predictions = [out["text"] for out in outputs]
    assert not [p for p in predictions if "<|" in p], "special tokens leaked into the text"
    wer = word_error_rate(predictions, references)
    print(f"{fixture}: WER {wer:.2f}% on {len(audio)} utterances")
    assert wer < 15.0


def test_word_error_rate_counts_errors_after_normalization():
    # 1 substitution (the -> a) + 1 deletion (world) over 6 + 2 reference words = 25%.
    assert word_error_rate(["the cat sat on a mat", "hello"], ["The cat sat on the mat.", "Hello, world!"]) == 25.0
    # 1 insertion over 2 words; casing and punctuation are not errors.
    assert word_error_rate(["Good morning, everyone!"], ["good morning"]) == 50.0
    # English normalization maps spellings and spelled numbers; the basic one does not.
    assert word_error_rate(["The color costs twenty dollars"], ["the colour costs 20 dollars"]) == 0.0
    assert word_error_rate(["The color costs 20 dollars"], ["the colour costs 20 dollars"], english=False) == 20.0
    assert normalize(["Hello, World!"]) == ["hello world"]
    with pytest.raises(ValueError, match="pair up"):
        word_error_rate(["a"], ["a", "b"])

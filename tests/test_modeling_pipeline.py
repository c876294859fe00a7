"""LiteWhisper in transformers' ASR pipeline keeps Whisper's behaviour: with every projection at full rank its
output equals the original Whisper's for batches, timestamps, long-form audio and language detection.

The Hub path (`pipeline(model=repo_id, trust_remote_code=True)`, which picks LiteWhisperPipeline from config.json
`custom_pipelines`) is tested in test_modeling_payload.py; here the same class is passed in directly.
"""

from __future__ import annotations

import pytest
import transformers
from transformers import WhisperFeatureExtractor, WhisperTokenizerFast, pipeline

from lite_whisper.modeling import LiteWhisperPipeline

import modeling_support as support

GREEDY = {"num_beams": 1}  # the pipeline's default is beam search: slower, and not what is under test


def _pipelines(folder):
    """(LiteWhisper pipeline, Whisper pipeline) for the imported Whisper in `folder`."""
    parts = {
        "tokenizer": WhisperTokenizerFast.from_pretrained(folder),
        "feature_extractor": WhisperFeatureExtractor.from_pretrained(folder),
    }
    lite_model = support.full_rank_lite(folder)
    lite = pipeline("automatic-speech-recognition", model=lite_model, pipeline_class=LiteWhisperPipeline, **parts)
    whisper = pipeline("automatic-speech-recognition", model=support.whisper(folder), **parts)
    assert lite.type == whisper.type == "seq2seq_whisper"
    return lite, whisper


@pytest.fixture(scope="module")
def tiny_pipelines(tiny_en_dir):
    return _pipelines(tiny_en_dir)


def test_batch_of_arrays(tiny_pipelines, speech_test_dir):
    lite, whisper = tiny_pipelines
    audio = [a for a, _ in support.speech(speech_test_dir)[:4]]
    expected = whisper(audio, batch_size=4, generate_kwargs=GREEDY)
    assert lite(audio, batch_size=4, generate_kwargs=GREEDY) == expected
    assert len(expected) == 4 and all(out["text"].strip() for out in expected)


def test_timestamps(tiny_pipelines, speech_test_dir):
    lite, whisper = tiny_pipelines
    audio = [a for a, _ in support.speech(speech_test_dir)[4:6]]
    expected = whisper(audio, batch_size=2, return_timestamps=True, generate_kwargs=GREEDY)
    assert lite(audio, batch_size=2, return_timestamps=True, generate_kwargs=GREEDY) == expected
    for out, samples in zip(expected, audio):
        starts_ends = [chunk["timestamp"] for chunk in out["chunks"]]
        assert starts_ends and all(0 <= s < e <= len(samples) / support.SAMPLING_RATE + 1 for s, e in starts_ends)


@pytest.mark.parametrize("chunk_length_s", [None, 30], ids=["sequential", "chunked"])
def test_audio_longer_than_60s(chunk_length_s, tiny_pipelines, speech_test_dir):
    lite, whisper = tiny_pipelines
    audio = support.long_audio(speech_test_dir, min_seconds=62)
    options = {"return_timestamps": True, "generate_kwargs": GREEDY}
    if chunk_length_s:
        options.update(chunk_length_s=chunk_length_s, batch_size=4)
    expected = whisper(audio, **options)
    assert lite(audio, **options) == expected
    assert expected["chunks"][-1]["timestamp"][0] > 45  # the transcript reaches the last minute, not one window


def test_language_detection_on_base(base_dir, speech_test_dir):
    lite, whisper = _pipelines(base_dir)
    audio, _ = support.speech(speech_test_dir)[0]
    options = {"return_language": True, "return_timestamps": True, "generate_kwargs": GREEDY}  # no `language`
    expected = whisper(audio, **options)
    assert lite(audio, **options) == expected
    if int(transformers.__version__.split(".")[0]) >= 5:  # 4.57's pipeline returns None here, for Whisper too
        assert {chunk["language"] for chunk in expected["chunks"]} == {"english"}

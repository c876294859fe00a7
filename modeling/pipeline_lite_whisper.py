"""The ASR pipeline for LiteWhisper: transformers' own, with its Whisper behaviour switched on.

transformers' `AutomaticSpeechRecognitionPipeline` enables timestamps, long-form decoding and language return
only when `config.model_type == "whisper"`. A LiteWhisper checkpoint has model_type "lite-whisper" (so that
loading it without `trust_remote_code` fails instead of yielding a Whisper with random projections), hence this
subclass, declared in config.json under `custom_pipelines` and loaded by
`pipeline("automatic-speech-recognition", model=..., trust_remote_code=True)`.

It also checks the audio it is given, where the stock pipeline transcribes garbage silently: an empty array
or one holding NaN/inf is refused with a clear error; integer PCM (int16, int32) is scaled to float in [-1, 1]
with a note, as soundfile reads it; `{"raw": ..., "sampling_rate": r}` at another rate is resampled here
(scipy's resample_poly; without scipy, linear interpolation, with a warning), since the parent needs torchaudio,
which has no CPU wheel for every torch. Valid 16 kHz float input goes to the parent untouched.

This file is uploaded to the Hub next to the weights: it depends only on transformers (and torch and numpy,
which transformers needs).
"""

from __future__ import annotations

import warnings
from math import gcd
from typing import Any

import numpy as np
import torch
from transformers import AutomaticSpeechRecognitionPipeline, WhisperForConditionalGeneration


def checked_audio(audio: Any) -> Any:
    """`audio` (numpy array or torch tensor) if it is usable, as given; integer PCM scaled to float32 (with a
    note)."""
    if isinstance(audio, torch.Tensor):
        array = checked_audio(audio.detach().cpu().numpy())
        return audio if array.dtype == audio.detach().cpu().numpy().dtype else array
    if not isinstance(audio, np.ndarray):
        return audio  # lists and the like: the parent says what it accepts
    if audio.size == 0:
        raise ValueError("the audio is empty (0 samples): nothing to transcribe")
    if np.issubdtype(audio.dtype, np.integer):
        info = np.iinfo(audio.dtype)
        warnings.warn(f"integer PCM audio ({audio.dtype}) converted to float32 in [-1, 1] (divided by "
                      f"{-int(info.min)})", stacklevel=3)
        audio = (audio.astype(np.float64) / -float(info.min)).astype(np.float32)
    elif not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"audio of dtype {audio.dtype}: give float samples in [-1, 1] (or integer PCM)")
    if not np.isfinite(audio).all():
        bad = int((~np.isfinite(audio)).sum())
        raise ValueError(f"the audio holds {bad} non-finite samples (NaN or inf) of {audio.size}: fix the input")
    return audio


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Mono `audio` at `rate` resampled to `target` Hz: scipy's polyphase filter, else linear interpolation."""
    try:
        from scipy.signal import resample_poly
    except ImportError:  # scipy is optional: transformers does not need it
        warnings.warn(f"scipy is not installed: {rate} Hz audio resampled to {target} Hz by linear interpolation "
                      "(lower quality; pip install scipy, or give 16 kHz audio)", stacklevel=3)
        length = int(round(len(audio) * target / rate))
        positions = np.arange(length) * (rate / target)
        return np.interp(positions, np.arange(len(audio)), audio).astype(np.float32)
    common = gcd(int(rate), int(target))
    return resample_poly(audio, target // common, int(rate) // common).astype(np.float32)


class LiteWhisperPipeline(AutomaticSpeechRecognitionPipeline):
    """`AutomaticSpeechRecognitionPipeline` that treats every Whisper subclass (LiteWhisper) as a Whisper.

    Usable directly too: `pipeline("automatic-speech-recognition", model=lite_model, tokenizer=...,
    feature_extractor=..., pipeline_class=LiteWhisperPipeline)`.
    """

    def __init__(self, model: Any, *args: Any, **kwargs: Any) -> None:
        # Decided before the parent's __init__, which checks its parameters against `self.type` already.
        self._is_whisper = isinstance(model, WhisperForConditionalGeneration)
        super().__init__(model, *args, **kwargs)

    def preprocess(self, inputs: Any, *args: Any, **kwargs: Any):
        """The parent's, after the checks of the module doc (and resampling of `{"raw", "sampling_rate"}`)."""
        if isinstance(inputs, dict) and ("raw" in inputs or "array" in inputs):
            inputs = dict(inputs)
            key = "raw" if "raw" in inputs else "array"
            audio = checked_audio(inputs[key])
            rate, target = inputs.get("sampling_rate"), self.feature_extractor.sampling_rate
            if rate and rate != target and isinstance(audio, np.ndarray) and audio.ndim == 1:
                if inputs.get("stride") is not None:
                    inputs["stride"] = tuple(int(round(s * target / rate)) for s in inputs["stride"])
                audio, inputs["sampling_rate"] = resample(audio, rate, target), target
            inputs[key] = audio
        elif isinstance(inputs, (np.ndarray, torch.Tensor)):
            inputs = checked_audio(inputs)
        return super().preprocess(inputs, *args, **kwargs)

    @property
    def type(self) -> str:
        """The parent's code path: "seq2seq_whisper" for any Whisper model, else what the parent chose."""
        return "seq2seq_whisper" if self._is_whisper else self._type

    @type.setter
    def type(self, value: str) -> None:
        self._type = value


__all__ = ["LiteWhisperPipeline", "checked_audio", "resample"]

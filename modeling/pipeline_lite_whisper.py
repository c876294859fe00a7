"""The ASR pipeline for LiteWhisper: transformers' own, with its Whisper behaviour switched on.

transformers' `AutomaticSpeechRecognitionPipeline` enables timestamps, long-form decoding and language return
only when `config.model_type == "whisper"`. A LiteWhisper checkpoint has model_type "lite-whisper" (so that
loading it without `trust_remote_code` fails instead of yielding a Whisper with random projections), hence this
subclass, declared in config.json under `custom_pipelines` and loaded by
`pipeline("automatic-speech-recognition", model=..., trust_remote_code=True)`.

This file is uploaded to the Hub next to the weights: it depends only on transformers.
"""

from __future__ import annotations

from typing import Any

from transformers import AutomaticSpeechRecognitionPipeline, WhisperForConditionalGeneration


class LiteWhisperPipeline(AutomaticSpeechRecognitionPipeline):
    """`AutomaticSpeechRecognitionPipeline` that treats every Whisper subclass (LiteWhisper) as a Whisper.

    Usable directly too: `pipeline("automatic-speech-recognition", model=lite_model, tokenizer=...,
    feature_extractor=..., pipeline_class=LiteWhisperPipeline)`.
    """

    def __init__(self, model: Any, *args: Any, **kwargs: Any) -> None:
        # Decided before the parent's __init__, which checks its parameters against `self.type` already.
        self._is_whisper = isinstance(model, WhisperForConditionalGeneration)
        super().__init__(model, *args, **kwargs)

    @property
    def type(self) -> str:
        """The parent's code path: "seq2seq_whisper" for any Whisper model, else what the parent chose."""
        return "seq2seq_whisper" if self._is_whisper else self._type

    @type.setter
    def type(self, value: str) -> None:
        self._type = value


__all__ = ["LiteWhisperPipeline"]

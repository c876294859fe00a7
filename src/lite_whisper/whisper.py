"""Facts about a Whisper checkpoint that several steps need: is it English-only, and how is it prompted.

English-only Whisper (tiny.en ... medium.en) has a vocabulary of 51864 tokens and takes no language or task
tokens; multilingual ones have one more token or two (51865; 51866 for large-v3) and are prompted with a
language and <|transcribe|>, as openai's checkpoints and transformers' WhisperForConditionalGeneration do.
"""

from __future__ import annotations

import json
from pathlib import Path

ENGLISH_ONLY_VOCAB = 51864


def is_english_only(model_or_config) -> bool:
    """Whether a Whisper is English-only: from a model, a (generation) config, a config dict, or a model folder.

    A generation config's `is_multilingual` decides when there is one; otherwise the vocabulary size does.
    """
    source = model_or_config
    if isinstance(source, (str, Path)):
        source = json.loads((Path(source) / "config.json").read_text())
    generation = getattr(source, "generation_config", None)
    if generation is not None and getattr(generation, "is_multilingual", None) is not None:
        return not generation.is_multilingual
    if getattr(source, "is_multilingual", None) is not None:  # a GenerationConfig
        return not source.is_multilingual
    config = getattr(source, "config", source)
    vocab = config.get("vocab_size") if isinstance(config, dict) else getattr(config, "vocab_size", None)
    return vocab == ENGLISH_ONLY_VOCAB


def is_english(model, language: str | None) -> bool:
    """Whether speech decoded by `model` with `language` is English (English-only models: always)."""
    if language is not None:
        return language.lower() in ("en", "english", "<|en|>")
    return is_english_only(model)


def generate_kwargs(model, language: str | None) -> dict:
    """generate() arguments for transcription: none for English-only models, task (and language) otherwise."""
    if is_english_only(model):
        if language is not None and not is_english(model, language):
            raise ValueError(f"this model is English-only: it cannot transcribe language {language!r}")
        return {}  # English-only models take no language or task tokens
    kwargs = {"task": "transcribe"}
    if language is not None:
        kwargs["language"] = language
    return kwargs


# Whisper's own remedy for decoding loops (openai-whisper's defaults, as transformers' generate() takes them): when
# a greedy transcript's compression ratio or mean log-probability says it repeats or guesses, it is decoded again
# with sampling at the next temperature. 1.35, not openai-whisper's 2.4: transformers compresses token bytes.
# Sampling draws random numbers: seed torch first for reproducible transcripts.
TEMPERATURE_FALLBACK = {"num_beams": 1, "temperature": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
                        "compression_ratio_threshold": 1.35, "logprob_threshold": -1.0}

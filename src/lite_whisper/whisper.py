"""Facts about a Whisper checkpoint that several steps need: is it English-only, and how is it prompted.

English-only Whisper (tiny.en ... medium.en) has a vocabulary of 51864 tokens and takes no language or task
tokens; multilingual ones have one more token or two (51865; 51866 for large-v3) and are prompted with a
language and <|transcribe|>, as openai's checkpoints and transformers' WhisperForConditionalGeneration do.

The prompt is said by the `task` and `language` flags of the generation config, as transformers now expects.
openai's checkpoints say it with `forced_decoder_ids`, which generate() still honours with a deprecation warning
("Using custom `forced_decoder_ids` ... deprecated"): `prompt_flags` translates it. The task flag matters: a
multilingual model given no language and no task detects the language, adds no task token, and its decoder
degenerates into repetitions; with `task="transcribe"` it detects the language and transcribes.
"""

from __future__ import annotations

import json
import logging
import re
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


def prompt_flags(generation: dict) -> dict:
    """`generation` (a generation_config.json's content) with its decoder prompt given by `task`/`language` flags
    instead of the deprecated `forced_decoder_ids`; the same dict when there is nothing to translate.

    Translated: [[1, <|notimestamps|>]] (English-only: generate() adds <|notimestamps|> itself) and
    [[1, None or <|lang|>], [2, <|task|>]] (+ [3, <|notimestamps|>]) (multilingual: the task, and the language when
    one is forced). Any other forced prompt is kept as it is: it says something the flags cannot.
    """
    forced = generation.get("forced_decoder_ids")
    if not forced:
        return generation
    tokens = [token for _, token in sorted((int(i), t) for i, t in forced)]
    if sorted(int(i) for i, _ in forced) != list(range(1, len(tokens) + 1)):
        return generation
    if tokens and tokens[-1] is not None and tokens[-1] == generation.get("no_timestamps_token_id"):
        tokens = tokens[:-1]
    tasks = {token: task for task, token in (generation.get("task_to_id") or {}).items()}
    languages = {token: code.strip("<|>") for code, token in (generation.get("lang_to_id") or {}).items()}
    flags = {}
    if len(tokens) == 2 and tokens[1] in tasks and (tokens[0] is None or tokens[0] in languages):
        flags["task"] = tasks[tokens[1]]
        if tokens[0] is not None:
            flags["language"] = languages[tokens[0]]
    elif tokens:
        return generation
    modern = {key: value for key, value in generation.items() if key != "forced_decoder_ids"}
    modern.update({key: value for key, value in flags.items() if modern.get(key) is None})
    return modern


def use_prompt_flags(generation_config) -> None:
    """Say a loaded model's decoder prompt with flags (`prompt_flags`), in place: a base from the Hub carries
    openai's forced_decoder_ids, which generate() warns about."""
    current = generation_config.to_dict()
    modern = prompt_flags(current)
    if modern is current:
        return
    generation_config.forced_decoder_ids = None
    for key in ("task", "language"):
        if key in modern:
            setattr(generation_config, key, modern[key])


class _WhisperGenerateNote(logging.Filter):
    """transformers 5.25's own WhisperGenerationMixin.generate passes its generation config to GenerationMixin
    together with suppress_tokens and begin_suppress_tokens (its PR #48108), so that every Whisper generate() logs
    "Passing `generation_config` together with generation-related arguments=(...) is deprecated", whatever its
    caller passes. That one note, naming exactly those two arguments, is dropped; any other goes through."""

    NOTE = re.compile(r"Passing `generation_config` together with generation-related arguments=\(\{(.*?)\}\)")
    ARGUMENTS = {"begin_suppress_tokens", "suppress_tokens"}

    def filter(self, record: logging.LogRecord) -> bool:
        match = self.NOTE.search(record.getMessage())
        return not (match and {name.strip(" '\"") for name in match.group(1).split(",")} == self.ARGUMENTS)


_GENERATE_NOTE = _WhisperGenerateNote()


def quiet_whisper_generate_note() -> None:
    """Drop the note transformers logs from inside Whisper's own generate() (see _WhisperGenerateNote): the
    command line and the demo call this, so that what they print is ours to act on."""
    logging.getLogger("transformers.generation.utils").addFilter(_GENERATE_NOTE)


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

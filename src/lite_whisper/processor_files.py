"""The processor files of a Whisper folder (feature extractor, tokenizer, generation config), as both transformers
4.57 and 5.x load them.

A LiteWhisper folder carries its base's processor files so that it is self-contained. Two things differ between
the versions that save them:
- transformers 5.x `WhisperProcessor.save_pretrained` writes the feature extractor inside `processor_config.json`
  and no `preprocessor_config.json` (4.57 reads either; tools outside transformers look for the latter);
- transformers 5.x writes `extra_special_tokens` in tokenizer_config.json as a list, which 4.57 reads as a dict
  (`'list' object has no attribute 'keys'`). Both versions read the same list as `additional_special_tokens`
  and register the same special tokens from it.
A third concerns generation: openai's generation_config.json says the decoder prompt with `forced_decoder_ids`,
which generate() honours with a deprecation warning in both versions; the copy says it with the `task` and
`language` flags that both read (whisper.prompt_flags).
Files are copied byte for byte, except tokenizer_config.json when it needs that rename, generation_config.json
when it has forced_decoder_ids, and a missing preprocessor_config.json, written from processor_config.json.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from lite_whisper.whisper import prompt_flags

# Copied from the base folder when present.
PROCESSOR_FILES = (
    "generation_config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "normalizer.json",
    "added_tokens.json",
    "special_tokens_map.json",
)
FEATURE_EXTRACTOR_FILE = "preprocessor_config.json"
PROCESSOR_FILE = "processor_config.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
GENERATION_CONFIG_FILE = "generation_config.json"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a readable JSON file: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a JSON {type(data).__name__}, expected an object")
    return data


def feature_extractor_config(folder: str | Path) -> dict | None:
    """The feature extractor's settings: preprocessor_config.json, else the `feature_extractor` entry of
    processor_config.json (transformers 5.x); None if the folder has neither."""
    folder = Path(folder)
    if (folder / FEATURE_EXTRACTOR_FILE).is_file():
        return _read_json(folder / FEATURE_EXTRACTOR_FILE)
    if (folder / PROCESSOR_FILE).is_file():
        nested = _read_json(folder / PROCESSOR_FILE).get("feature_extractor")
        return nested if isinstance(nested, dict) else None
    return None


def missing_processor_files(folder: str | Path) -> list[str]:
    """What a base folder lacks for a self-contained LiteWhisper folder (empty if nothing)."""
    folder = Path(folder)
    missing = [name for name in ("generation_config.json", TOKENIZER_CONFIG_FILE) if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in ("tokenizer.json", "vocab.json")):
        missing.append("tokenizer.json (or vocab.json)")
    if feature_extractor_config(folder) is None:
        missing.append(f"{FEATURE_EXTRACTOR_FILE} (or {PROCESSOR_FILE} with a `feature_extractor` entry)")
    return missing


def check_processor_files(folder: str | Path) -> None:
    """Raise FileNotFoundError naming what `folder` lacks to be the base of a self-contained LiteWhisper folder."""
    missing = missing_processor_files(folder)
    if missing:
        raise FileNotFoundError(
            f"base model folder {folder} lacks {', '.join(missing)}: a LiteWhisper folder copies the processor, "
            "tokenizer and generation config of its base so that it is self-contained. Pass the folder of the "
            "Whisper checkpoint the model was converted from (e.g. a snapshot_download of the base repo, or a folder "
            "where both the model and its WhisperProcessor were saved with save_pretrained)."
        )


def portable_tokenizer_config(config: dict) -> dict:
    """tokenizer_config.json content that transformers 4.57 and 5.x both load the same way.

    A list-valued `extra_special_tokens` (what 5.x writes) becomes `additional_special_tokens` (merged with one
    already there, in order); a dict-valued one (named extra tokens, 4.x) is left alone."""
    extra = config.get("extra_special_tokens")
    if not isinstance(extra, list):
        return config
    config = {k: v for k, v in config.items() if k != "extra_special_tokens"}
    additional = list(config.get("additional_special_tokens") or [])
    config["additional_special_tokens"] = additional + [t for t in extra if t not in additional]
    return config


def _rewrite_json(path: Path, transform) -> bool:
    """Rewrite the JSON file at `path` in place with `transform(content)`, unless it is missing or the transform
    returns its input unchanged (the same object); True if it was rewritten."""
    if not path.is_file():
        return False
    config = _read_json(path)
    changed = transform(config)
    if changed is config:
        return False
    _write_json(path, changed)
    return True


def make_tokenizer_config_portable(folder: str | Path) -> bool:
    """Rewrite `folder`'s tokenizer_config.json in place if 4.57 could not read it; True if it was rewritten."""
    return _rewrite_json(Path(folder) / TOKENIZER_CONFIG_FILE, portable_tokenizer_config)


def use_prompt_flags_in_file(folder: str | Path) -> bool:
    """Rewrite `folder`'s generation_config.json in place with the prompt as flags; True if it was rewritten."""
    return _rewrite_json(Path(folder) / GENERATION_CONFIG_FILE, prompt_flags)


def copy_processor_files(base_dir: str | Path, target: str | Path) -> list[str]:
    """Copy the processor, tokenizer and generation config files of `base_dir` into `target` (names copied).

    Byte for byte, except tokenizer_config.json made portable and generation_config.json's prompt said with flags
    (see the module doc), and preprocessor_config.json
    written from processor_config.json when the base has only the latter."""
    base_dir, target = Path(base_dir), Path(target)
    check_processor_files(base_dir)
    copied = []
    for name in PROCESSOR_FILES:
        if (base_dir / name).is_file():
            shutil.copyfile(base_dir / name, target / name)
            copied.append(name)
    make_tokenizer_config_portable(target)
    use_prompt_flags_in_file(target)
    if not (target / FEATURE_EXTRACTOR_FILE).is_file():
        settings = dict(feature_extractor_config(base_dir))
        settings.setdefault("feature_extractor_type", "WhisperFeatureExtractor")
        _write_json(target / FEATURE_EXTRACTOR_FILE, {**settings, "processor_class": "WhisperProcessor"})
        copied.append(FEATURE_EXTRACTOR_FILE)
    return copied


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


__all__ = [
    "PROCESSOR_FILES",
    "check_processor_files",
    "copy_processor_files",
    "feature_extractor_config",
    "make_tokenizer_config_portable",
    "missing_processor_files",
    "portable_tokenizer_config",
    "use_prompt_flags_in_file",
]

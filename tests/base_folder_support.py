"""Base Whisper folders as users have them: saved by transformers 5.x, or damaged in one file."""

from __future__ import annotations

import json
from pathlib import Path


def transformers5_saved(whisper_dir: Path, target: Path) -> Path:
    """`whisper_dir` loaded and saved again by this transformers (5.x): WhisperProcessor.save_pretrained writes
    processor_config.json (feature extractor inside) and no preprocessor_config.json, as for every Whisper
    fine-tuned and saved with transformers 5."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    WhisperProcessor.from_pretrained(whisper_dir).save_pretrained(target)
    WhisperForConditionalGeneration.from_pretrained(whisper_dir).save_pretrained(target)
    return target


def altered_copy(folder: Path, target: Path, drop: tuple[str, ...] = (), files: dict | None = None) -> Path:
    """`target`: links to `folder`'s files, without those in `drop`, with `files` {name: dict (JSON) or bytes}
    written in place of (or next to) the others."""
    files = files or {}
    target.mkdir(parents=True)
    for f in folder.iterdir():
        if f.is_file() and f.name not in drop and f.name not in files:
            (target / f.name).symlink_to(f.resolve())
    for name, content in files.items():
        data = content if isinstance(content, bytes) else json.dumps(content, indent=2).encode()
        (target / name).write_bytes(data)
    return target


def edited_json(folder: Path, name: str, **changes) -> dict:
    """`folder/name` (JSON) with `changes` applied at the top level."""
    return {**json.loads((folder / name).read_text()), **changes}

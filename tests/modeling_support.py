"""Shared, cached building blocks for the LiteWhisper modeling tests (tests/test_modeling_*.py).

Functions are cached per process so that test modules share one loaded Whisper and one full-rank LiteWhisper.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from safetensors.torch import save_file
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from lite_whisper import modeling
from lite_whisper.compression.lite_model import build_lite_whisper, save_lite_whisper, svd_factors

SAMPLING_RATE = 16_000
# Ranks in the style of the efficient-speech checkpoints for tiny.en: multiples of 16, some projections dense.
ES_RANKS = [
    {"fc1": 160, "k_proj": 48, "out_proj": 128, "q_proj": 64, "v_proj": 144},
    {"fc1": 192, "fc2": 176, "k_proj": 96, "out_proj": 208, "q_proj": 128, "v_proj": 224},
    {"k_proj": 112, "out_proj": 208, "q_proj": 176, "v_proj": 256},
    {"fc2": 320, "q_proj": 32},
]


@functools.lru_cache(maxsize=None)
def whisper(folder: Path) -> WhisperForConditionalGeneration:
    """The imported real Whisper in fp32, eval mode."""
    return WhisperForConditionalGeneration.from_pretrained(folder).eval()


@functools.lru_cache(maxsize=None)
def processor(folder: Path) -> WhisperProcessor:
    return WhisperProcessor.from_pretrained(folder)


@functools.lru_cache(maxsize=None)
def full_rank_lite(folder: Path):
    """A LiteWhisper of `folder`'s Whisper with every encoder projection factorized at full rank (exact SVD)."""
    model = whisper(folder)
    return build_lite_whisper(model, svd_factors(model))


@functools.lru_cache(maxsize=None)
def saved_full_rank_lite(folder: Path, parent: Path) -> Path:
    """full_rank_lite(folder) saved by save_lite_whisper into `parent` (the first caller's folder is kept)."""
    return save_lite_whisper(full_rank_lite(folder), parent / f"lite-{folder.name}", folder)


@functools.lru_cache(maxsize=None)
def speech(folder: Path) -> tuple[tuple[np.ndarray, str], ...]:
    """(16 kHz mono float32 audio, reference text) of every utterance of a synthesized audiofolder."""
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines() if line.strip()]
    out = []
    for row in rows:
        audio, rate = sf.read(folder / row["file_name"], dtype="float32")
        assert rate == SAMPLING_RATE and audio.ndim == 1, f"{row['file_name']}: expected 16 kHz mono"
        out.append((audio, row["text"]))
    return tuple(out)


def long_audio(folder: Path, min_seconds: float) -> np.ndarray:
    """Utterances of `folder` joined with 0.5 s of silence until the audio is longer than `min_seconds`."""
    gap = np.zeros(SAMPLING_RATE // 2, dtype=np.float32)
    pieces, total = [], 0
    for audio, _ in speech(folder):
        pieces += [audio, gap]
        total += len(audio) + len(gap)
        if total > min_seconds * SAMPLING_RATE:
            return np.concatenate(pieces)
    raise AssertionError(f"{folder} holds less than {min_seconds} s of speech")


def features(folder: Path, audio: np.ndarray) -> torch.Tensor:
    return processor(folder)(audio, sampling_rate=SAMPLING_RATE, return_tensors="pt").input_features


def logits(model, input_features: torch.Tensor, decoder_input_ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_features=input_features, decoder_input_ids=decoder_input_ids).logits


def hf_cache_repo(cache: Path, repo_id: str, folder: Path) -> str:
    """Lay `folder` out in `cache` as huggingface_hub does for a downloaded repo; returns the commit hash.

    models--{org}--{name}/blobs/<sha256>, snapshots/<commit>/<file> -> ../../blobs/<sha256>, refs/main.
    """
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for file in sorted(folder.iterdir()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return commit


def write_efficient_speech_checkpoint(tiny_en_dir: Path, folder: Path, ranks: list[dict[str, int]],
                                      dtype: torch.dtype = torch.float32):
    """model.safetensors (in `dtype`, no proj_out: tied) and config.json as the efficient-speech/lite-whisper-*
    repos hold them; returns the model (float32). Code and generation config are the caller's."""
    base = whisper(tiny_en_dir)
    model = build_lite_whisper(base, svd_factors(base, ranks))
    folder.mkdir(parents=True)
    weights = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items() if k != "proj_out.weight"}
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((tiny_en_dir / "config.json").read_text())
    for key in ("dtype", "torch_dtype", "transformers_version"):
        config.pop(key, None)
    config.update(
        _name_or_path="efficient-speech/lite-whisper-tiny.en",
        architectures=["LiteWhisperForConditionalGeneration"],
        auto_map={
            "AutoConfig": "configuration_lite_whisper.LiteWhisperConfig",
            "AutoModel": "modeling_lite_whisper.LiteWhisperForConditionalGeneration",
        },
        low_rank_config=ranks,
        model_type="lite-whisper",
        torch_dtype=str(dtype).removeprefix("torch."),
        transformers_version="4.46.3",
    )
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    return model


def efficient_speech_folder(tiny_en_dir: Path, folder: Path, ranks: list[dict[str, int]] = ES_RANKS):
    """A checkpoint laid out like efficient-speech/lite-whisper-*: their config keys (model_type "lite-whisper",
    auto_map for AutoConfig and AutoModel, low_rank_config, torch_dtype), their weight names, no proj_out
    (tied), generation_config.json, and our code files under the names their auto_map uses. (The LiteASR
    format with its own code files is built by tests/liteasr_support.py.)"""
    model = write_efficient_speech_checkpoint(tiny_en_dir, folder, ranks)
    shutil.copyfile(tiny_en_dir / "generation_config.json", folder / "generation_config.json")
    code = Path(modeling.__file__).parent
    for name in modeling.CODE_FILES:  # the modeling file imports the pipeline's
        shutil.copyfile(code / name, folder / name)
    return model


def run_isolated(script: str, args: dict, cwd: Path, env: dict[str, str] | None = None, timeout: int = 600) -> None:
    """Run `script` (with `ARGS` = `args`) in a fresh interpreter that sees site-packages but not lite_whisper.

    `-I -S` skips site initialization, hence the .pth files (among them lite_whisper's editable install);
    the site-packages folders are then put on sys.path by hand, in this interpreter's order (a venv that
    overrides some packages of another, as `make test-compat` builds, lists its own first).
    """
    paths = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
    paths += [p for p in site.getsitepackages() if Path(p).is_dir() and p not in paths]
    prelude = (
        "import sys, json, importlib.util\n"
        f"sys.path.extend({paths!r})\n"
        "assert importlib.util.find_spec('lite_whisper') is None, 'lite_whisper must not be importable here'\n"
        f"ARGS = json.loads({json.dumps(args)!r})\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", prelude + script],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"isolated run failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"

"""Everything `convert` is given, checked in seconds before any expensive work (loading weights, calibration).

One place for the checks, in the order of their cost: the options, the output path, the base model (its config,
the names and shapes of its weights read from the safetensors headers, its feature extractor, tokenizer and
generation config, which the LiteWhisper folder will carry), then the calibration data (it exists and its first
clip decodes). Each failure names the problem and the fix. `lite-whisper import-liteasr` checks its base with
the same `check_base_model`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from huggingface_hub import snapshot_download
from safetensors import safe_open
from transformers import (
    AutoTokenizer,
    GenerationConfig,
    PretrainedConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
)

from lite_whisper import atomic
from lite_whisper.compression.options import ConversionOptions
from lite_whisper.data.assets import calibration_pool
from lite_whisper.data.audio import iter_audio_dataset
from lite_whisper.data.calibration_mix import Source, resolve_calibration, split_sources
from lite_whisper.data.hub_datasets import DatasetSource
from lite_whisper.processor_files import PROCESSOR_FILES, check_processor_files

_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$|^[\w.-]+$")
_SAFETENSORS_INDEX = "model.safetensors.index.json"


# Synthesized clips of the default calibration pool (beside the ~570 pieces of real recordings).
DEFAULT_POOL_SIZE = 512


@dataclass
class BaseModel:
    """A checked base Whisper: its config dict and a local folder holding its processor files."""

    source: str
    config: dict
    processor_dir: Path


@dataclass
class ValidatedInputs:
    base: BaseModel
    output: Path
    calibration: list[Source]  # recipes expanded, Hub datasets pinned to their revision (calibration_mix)


def validate_inputs(
    base: str | Path,
    output: str | Path,
    calibration: str | Sequence[str] | None,
    options: ConversionOptions,
    *,
    dataset_config: str | None = None,
    split: str | None = None,
    overwrite: bool = False,
) -> ValidatedInputs:
    """Check every input of `convert`; raise ValueError / FileNotFoundError / FileExistsError naming the fix.
    No `calibration`: the default pool (data/pool.py), built into the cache once the rest is checked."""
    options.validate()
    check_device(options.device)
    output = check_output(output, base, overwrite, inputs=split_sources(calibration) if calibration else ())
    checked = check_base_model(base, allow_pickle=options.allow_pickle)
    if calibration is None:
        calibration = str(calibration_pool(DEFAULT_POOL_SIZE, seed=options.seed))
    sources = check_calibration(calibration, dataset_config=dataset_config, split=split,
                                audio_column=options.audio_column, text_column=options.text_column)
    return ValidatedInputs(checked, output, sources)


# --- options and output ----------------------------------------------------------------------------


def check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device is available here; use --device cpu")
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise ValueError(f"--device {device}: expected cpu, cuda, cuda:N or mps")


def check_output(output: str | Path, base: str | Path, overwrite: bool, inputs: Sequence = ()) -> Path:
    """The output folder, if it can be written: not there yet (or `overwrite`), not the base nor any of `inputs`
    (calibration folders), nor inside or around them (overwriting would delete them), nor the current directory
    (atomic.check_target), its parent creatable and writable."""
    named = [(f"the base model folder {base}", base)] + [(f"the calibration folder {p}", p) for p in inputs]
    output = atomic.check_target(output, inputs=named, overwrite=overwrite)
    parent = output.resolve().parent
    while not parent.exists():  # the nearest existing ancestor is where the folders will be created
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot create {output}: {parent} is not a writable folder; choose another --output")
    return output


# --- the base model --------------------------------------------------------------------------------


def check_base_model(base: str | Path, allow_pickle: bool = False) -> BaseModel:
    """A Whisper checkpoint (folder or Hub id) that a LiteWhisper can be built from and carry the files of.

    Reads only small files (config, processor, tokenizer, generation config; the safetensors headers)."""
    source = str(base)
    path = Path(base).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"base model {source!r} is a file: give the folder of a Whisper checkpoint or a Hub id")
    if not path.exists() and not (_REPO_ID.match(source) and not source.startswith((".", "/", "~"))):
        raise FileNotFoundError(f"base model folder {source!r} does not exist (nor is it a Hub model id)")
    processor_dir = path if path.is_dir() else _download_small_files(source)
    config = whisper_config(source)
    check_processor_files(processor_dir)
    if path.is_dir():
        check_whisper_weights(path, config, allow_pickle)
    _check_processor(source, config)
    return BaseModel(source, config, processor_dir)


def _download_small_files(repo_id: str) -> Path:
    """A local snapshot of a Hub model's config and processor files (not its weights)."""
    try:
        return Path(snapshot_download(repo_id, allow_patterns=["config.json", *PROCESSOR_FILES]))
    except Exception as err:  # offline, not found, gated: huggingface_hub's own message says which
        raise FileNotFoundError(f"cannot fetch the base model {repo_id!r} from the Hub: {err}") from err


def whisper_config(source: str | Path) -> dict:
    """The config.json of a Whisper checkpoint (folder or Hub id) as a dict; anything else is refused by name."""
    source = str(source)
    try:
        config, _ = PretrainedConfig.get_config_dict(source)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read a model config from {source!r}: {err}") from err
    model_type = config.get("model_type")
    if model_type != "whisper":
        hint = " (it is already a LiteWhisper)" if model_type == "lite-whisper" else ""
        raise ValueError(
            f"{source!r} is a {model_type!r} model{hint}, not a Whisper checkpoint: "
            "convert from an original Whisper (e.g. openai/whisper-base or a folder made by import-ct2)"
        )
    try:
        WhisperConfig.from_dict(config)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source!r}: its config.json is not a valid Whisper config: {err}") from err
    return config


def checkpoint_shapes(folder: Path) -> dict[str, tuple[int, ...]] | None:
    """Name -> shape of every tensor in the folder's safetensors weights (headers only); None when the folder
    holds weights in another format only (transformers checks those when it loads them)."""
    index = folder / _SAFETENSORS_INDEX
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (folder / "model.safetensors").is_file():
        files = ["model.safetensors"]
    elif any(folder.glob("pytorch_model*.bin")):
        return None
    else:
        raise FileNotFoundError(f"{folder} holds no model weights (model.safetensors, its shards, or "
                                "pytorch_model.bin): give the folder of a complete Whisper checkpoint")
    shapes = {}
    for name in files:
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / _SAFETENSORS_INDEX} lists {name}, which is missing")
        try:
            with safe_open(folder / name, framework="pt") as f:
                shapes.update({key: tuple(f.get_slice(key).get_shape()) for key in f.keys()})
        except Exception as err:  # truncated download, not a safetensors file
            raise ValueError(f"{folder / name} is not a readable safetensors file: {err}") from err
    return shapes


def expected_shapes(model_class, config) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every weight `model_class(config)` holds, built on the meta device (no memory)."""
    with torch.device("meta"):
        model = model_class(config)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def compare_shapes(found: dict[str, tuple], expected: dict[str, tuple], tied: set[str] = frozenset()) -> list[str]:
    """Problems of a checkpoint against a model's weights: missing, unexpected and mismatched tensors."""
    if not any(k.startswith("model.") for k in found) and any(k.startswith("model.") for k in expected):
        found = {f"model.{k}": v for k, v in found.items()}  # saved from WhisperModel (no `model.` prefix)
    missing = sorted(set(expected) - set(found) - set(tied))
    unexpected = sorted(set(found) - set(expected))
    mismatched = sorted(f"{k} (checkpoint {list(found[k])}, expected {list(expected[k])})"
                        for k in set(found) & set(expected) if tuple(found[k]) != tuple(expected[k]))
    problems = []
    for label, names in (("missing", missing), ("unexpected", unexpected), ("mismatched", mismatched)):
        if names:
            shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
            problems.append(f"{label} weights: {shown}")
    return problems


PICKLE_FIX = ("convert it to safetensors first (python -c \"from transformers import WhisperForConditionalGeneration "
              "as W; W.from_pretrained('{folder}', use_safetensors=False).save_pretrained('{folder}-safetensors')\"), "
              "or pass --allow-pickle if you trust its origin")


def dimension_problems(config: dict, shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """Where the config's sizes disagree with the weights' shapes (read from the safetensors headers), checked
    before any model is built from the config (whose own errors, e.g. "embed_dim must be divisible by
    num_heads", would not say that config and weights disagree). Works for Whisper and LiteWhisper weights."""
    def shape(name):
        return shapes.get(name) or shapes.get(name.removeprefix("model."))

    conv1, tokens = shape("model.encoder.conv1.weight"), shape("model.decoder.embed_tokens.weight")
    enc_pos, dec_pos = shape("model.encoder.embed_positions.weight"), shape("model.decoder.embed_positions.weight")
    expected = {
        "d_model": conv1[0] if conv1 else None,
        "num_mel_bins": conv1[1] if conv1 else None,
        "vocab_size": tokens[0] if tokens else None,
        "max_source_positions": enc_pos[0] if enc_pos else None,
        "max_target_positions": dec_pos[0] if dec_pos else None,
    }
    for side in ("encoder", "decoder"):
        layers = {int(m.group(1)) for k in shapes if (m := re.match(rf"(?:model\.)?{side}\.layers\.(\d+)\.", k))}
        expected[f"{side}_layers"] = max(layers) + 1 if layers else None
    problems = []
    for key, value in expected.items():
        if value is not None and key in config and config[key] != value:
            problems.append(f"{key} is {config[key]} in config.json but {value} in the weights")
    return problems


def check_whisper_weights(folder: Path, config: dict, allow_pickle: bool = False) -> None:
    """The folder's weights are those of a Whisper with this config: every tensor present, with its shape.
    Weights in pickle files only (pytorch_model.bin, which can run code when loaded) are refused unless
    `allow_pickle` (their shapes are then left to transformers)."""
    found = checkpoint_shapes(folder)
    if found is None:
        if allow_pickle:
            return
        raise ValueError(f"{folder} holds its weights only as pytorch_model.bin (a pickle, which can run code when "
                         f"loaded): {PICKLE_FIX.format(folder=folder)}")
    problems = dimension_problems(config, found)
    if problems:
        raise ValueError(f"the config.json of {folder} and its weights disagree ({'; '.join(problems)}): the config "
                         "was edited or belongs to another checkpoint; use the config.json saved with these weights")
    whisper_config = WhisperConfig.from_dict(config)
    tied = {"proj_out.weight"} if whisper_config.tie_word_embeddings else set()
    problems = compare_shapes(found, expected_shapes(WhisperForConditionalGeneration, whisper_config), tied)
    if problems:
        raise ValueError(f"the weights in {folder} do not match its config.json ({'; '.join(problems)}): the folder "
                         "mixes files of different checkpoints, or its config was edited. Re-save the model with "
                         "save_pretrained, or download it again.")


def _check_processor(source: str, config: dict) -> None:
    """The feature extractor, tokenizer and generation config load and agree with the model config."""
    def load(what, loader):
        try:
            return loader(source)
        except Exception as err:
            raise ValueError(f"the {what} of {source!r} does not load ({type(err).__name__}: {err}); a LiteWhisper "
                             "folder carries it, so fix it first (re-save the base's WhisperProcessor with "
                             "save_pretrained)") from err

    features = load("feature extractor", WhisperFeatureExtractor.from_pretrained)
    if features.feature_size != config.get("num_mel_bins", 80):
        raise ValueError(f"{source!r}: the feature extractor makes {features.feature_size} mel bins but the model "
                         f"takes {config.get('num_mel_bins')}: its processor files belong to another Whisper")
    tokenizer = load("tokenizer", AutoTokenizer.from_pretrained)
    start = tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    if start != config.get("decoder_start_token_id") or len(tokenizer) > config.get("vocab_size", 0):
        raise ValueError(f"{source!r}: the tokenizer ({len(tokenizer)} tokens, <|startoftranscript|> = {start}) does "
                         f"not match the model (vocabulary {config.get('vocab_size')}, decoder start "
                         f"{config.get('decoder_start_token_id')}): its tokenizer files belong to another Whisper")
    load("generation config", GenerationConfig.from_pretrained)


# --- calibration data ------------------------------------------------------------------------------


def check_calibration(calibration: str | Sequence[str], *, dataset_config: str | None = None,
                      split: str | None = None, audio_column: str | None = None,
                      text_column: str | None = None) -> list[Source]:
    """Each calibration set (one, several to mix, or a recipe's parts) exists and its first clip decodes; a Hub
    dataset is checked through the Hub's API (exists, readable with the token there is, config and split) and
    streamed, never downloaded. Returns the sources resolved (`calibration_mix.resolve_calibration`)."""
    sources = resolve_calibration(calibration, dataset_config, split)
    for source in sources:
        label = source.dataset if isinstance(source, DatasetSource) else source
        try:  # the dataset's first row, whatever rows the conversion will skip or draw
            first = next(iter_audio_dataset(_first_rows(source), split=split, audio_column=audio_column,
                                            text_column=text_column, max_samples=1), None)
        except (FileNotFoundError, ValueError):
            raise
        except Exception as err:  # soundfile's decoding errors and the like
            raise ValueError(f"the first clip of the calibration set {label!r} does not decode: {err}") from err
        if first is None:
            raise ValueError(f"no audio found in the calibration set {label!r} (split {split!r})")
        if first.array.size == 0:
            raise ValueError(f"the first clip of the calibration set {label!r} is empty")
    return sources


def _first_rows(source: Source) -> Source:
    return DatasetSource(source.dataset, source.config, source.split, 0, source.revision) \
        if isinstance(source, DatasetSource) else source


__all__ = [
    "BaseModel",
    "ValidatedInputs",
    "check_base_model",
    "check_calibration",
    "check_output",
    "checkpoint_shapes",
    "compare_shapes",
    "expected_shapes",
    "validate_inputs",
]

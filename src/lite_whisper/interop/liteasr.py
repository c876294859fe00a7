"""Import a LiteASR checkpoint (the efficient-speech/lite-whisper-* Hub repos) as a self-contained LiteWhisper folder.

Those repos hold the same weights our model class reads (`low_rank_config`, `weight1` [in, rank], `weight2`
[rank, out] and `bias` per factorized projection, model_type "lite-whisper"), but with their own code, an
`auto_map` for AutoConfig and AutoModel only, no processor, tokenizer or feature-extractor files and a minimal
generation_config.json: `pipeline()` treats them as CTC, `AutoModelForSpeechSeq2Seq` refuses them, and without the
base's `max_length` and alignment heads generation and timestamps go wrong. The imported folder has our code
(AutoModelForSpeechSeq2Seq and the ASR pipeline), the very same tensors, and the processor, tokenizer and
generation config of BASE, the Whisper the checkpoint was compressed from.

Only safetensors weights are read (never pickles). Before any weight is read, SOURCE's architecture is compared
with BASE's, and every tensor's shape with what BASE's architecture and SOURCE's `low_rank_config` require.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from huggingface_hub import snapshot_download
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import GenerationConfig, WhisperConfig

from lite_whisper.compression import check_base_model, check_output, checkpoint_shapes, compare_shapes, expected_shapes
from lite_whisper.compression import lite_config_from_whisper, save_lite_whisper
from lite_whisper.modeling import LiteWhisperForConditionalGeneration

# Config entries that fix the tensor shapes: SOURCE and BASE must agree on all of them.
ARCHITECTURE_KEYS = (
    "d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads", "decoder_attention_heads",
    "encoder_ffn_dim", "decoder_ffn_dim", "vocab_size", "num_mel_bins", "max_source_positions",
    "max_target_positions",
)
SOURCE_FILES = ["config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json"]


def _source_folder(source: str | Path) -> Path:
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists() or str(source).startswith((".", "/", "~")):
        raise FileNotFoundError(f"{source} is not a folder: give a LiteASR checkpoint folder or its Hub id")

    try:  # the config and safetensors weights only: its code is not needed (ours replaces it), nor pickles
        return Path(snapshot_download(str(source), allow_patterns=SOURCE_FILES))
    except Exception as err:
        raise FileNotFoundError(f"cannot fetch {source!r} from the Hub: {err}") from err


def read_source_config(folder: Path) -> dict:
    """SOURCE's config.json, checked to be a LiteASR (lite-whisper) checkpoint."""
    path = folder / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no config.json: give the folder (or Hub id) of a LiteASR checkpoint")
    config = json.loads(path.read_text())
    if config.get("model_type") != "lite-whisper" or not isinstance(config.get("low_rank_config"), list):
        raise ValueError(
            f"{folder} is not a LiteASR checkpoint (model_type {config.get('model_type')!r}, "
            f"{'a' if 'low_rank_config' in config else 'no'} low_rank_config): import-liteasr takes the "
            "efficient-speech/lite-whisper-* format; convert an original Whisper with `lite-whisper convert`"
        )
    return config


def check_architecture(source_config: dict, base_config: dict, source: str, base: str) -> None:
    """SOURCE was compressed from a Whisper of BASE's architecture (same widths, depths, vocabulary)."""
    differ = [f"{key} {source_config.get(key)} vs {base_config.get(key)}" for key in ARCHITECTURE_KEYS
              if source_config.get(key) != base_config.get(key)]
    if differ:
        raise ValueError(
            f"{source} is not compressed from a Whisper of {base}'s architecture ({', '.join(differ)}, SOURCE vs "
            "BASE): pass as --base the Whisper it was compressed from (e.g. openai/whisper-large-v3-turbo for "
            "efficient-speech/lite-whisper-large-v3-turbo)"
        )


def _load_state(folder: Path, names: list[str]) -> dict:
    index = folder / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else names
    state = {}
    for name in files:
        state.update(load_file(folder / name))
    return state


def _warn_if_decoder_differs(state: dict, base_dir: Path, source: str, base: str) -> None:
    """LiteASR leaves the decoder as it was: a different one suggests that BASE is not SOURCE's base."""
    key = "model.decoder.layer_norm.weight"
    if key not in state or not (base_dir / "model.safetensors").is_file():
        return
    with safe_open(base_dir / "model.safetensors", framework="pt") as f:
        if key not in f.keys():
            return
        reference = f.get_tensor(key)
    if not torch.allclose(state[key].float(), reference.float(), atol=1e-3):
        warnings.warn(f"the decoder of {source} differs from {base}'s: if {base} is not the Whisper it was "
                      "compressed from (or a fine-tune of it), pass the right one as --base", stacklevel=3)


def import_liteasr(source: str | Path, base: str | Path, output: str | Path, overwrite: bool = False) -> Path:
    """Write SOURCE (a LiteASR checkpoint: folder or Hub id) as a self-contained LiteWhisper folder at `output`.

    The tensors are SOURCE's, unchanged (dtype included); config.json is BASE's architecture with SOURCE's
    `low_rank_config`; code, `auto_map` and `custom_pipelines` are ours; processor, tokenizer and generation
    config are BASE's. Written atomically, with a conversion.json naming both."""
    folder = _source_folder(source)
    source_config = read_source_config(folder)
    output = check_output(output, base, overwrite)
    check_output(output, folder, overwrite)  # nor inside SOURCE
    checked = check_base_model(base)
    check_architecture(source_config, checked.config, str(source), str(base))

    config = lite_config_from_whisper(WhisperConfig.from_dict(checked.config), source_config["low_rank_config"])
    shapes = checkpoint_shapes(folder)
    if shapes is None:
        raise ValueError(f"{source} has no safetensors weights: only those are read (pickled .bin files are not "
                         "loaded, they can run code); convert them with transformers' save_pretrained first")
    tied = {"proj_out.weight"} if config.tie_word_embeddings else set()
    problems = compare_shapes(shapes, expected_shapes(LiteWhisperForConditionalGeneration, config), tied)
    if problems:
        raise ValueError(
            f"the weights of {source} do not fit {base}'s architecture with its low_rank_config "
            f"({'; '.join(problems)}): each listed projection must be stored as weight1 [in, rank], weight2 "
            "[rank, out] and bias, the others as in Whisper; check --base and the checkpoint's config.json"
        )

    state = _load_state(folder, sorted(p.name for p in folder.glob("*.safetensors")))
    if not any(k.startswith("model.") for k in state):
        state = {f"model.{k}": v for k, v in state.items()}
    _warn_if_decoder_differs(state, checked.processor_dir, str(source), str(base))
    dtype = next(t.dtype for t in state.values() if t.is_floating_point())
    config.dtype = dtype  # recorded in config.json as the weights' dtype
    with torch.device("meta"):
        model = LiteWhisperForConditionalGeneration(config)
    if "proj_out.weight" not in state and tied:
        state["proj_out.weight"] = state["model.decoder.embed_tokens.weight"]
    model.load_state_dict(state, strict=True, assign=True)
    model.tie_weights()
    model.generation_config = GenerationConfig.from_pretrained(checked.processor_dir)
    model.eval()
    record = {
        "method": "imported from LiteASR (lite-whisper import-liteasr)",
        "source": str(source),
        "base_model": str(base),
        "low_rank_config": config.low_rank_config,
    }
    return save_lite_whisper(model, output, checked.processor_dir, overwrite=overwrite,
                             extra_files={"conversion.json": json.dumps(record, indent=2) + "\n"})


__all__ = ["ARCHITECTURE_KEYS", "check_architecture", "import_liteasr", "read_source_config"]

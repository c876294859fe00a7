"""Build a LiteWhisper from a Whisper and low-rank factors, and save it as a self-contained Hub folder.

The model classes themselves live in `modeling/` (the Hub payload, imported as `lite_whisper.modeling`); this
module is the glue the conversion uses: a config derived from the base Whisper's, a model that takes every
weight from the Whisper except the factorized projections, exact SVD factors (for tests and baselines), an
atomic save that writes the weights, the code files and the base's processor files side by side, and the switch
of the encoder layers' inference fast path (`set_fast_path`: off for the ONNX export and `bench --plain`).
"""

from __future__ import annotations

import contextlib
import copy
import shutil
from collections.abc import Mapping
from pathlib import Path

import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration

from lite_whisper import atomic, modeling
from lite_whisper.compression.types import FactorTable
from lite_whisper.modeling import (
    CODE_FILES,
    PROJECTION_MODULES,
    PROJECTIONS,
    LiteWhisperConfig,
    LiteWhisperForConditionalGeneration,
    LowRankLinear,
    get_projection,
    projection_shape,
    set_projection,
    validate_low_rank_config,
)
from lite_whisper.processor_files import PROCESSOR_FILES, check_processor_files, copy_processor_files

# (encoder layer index, projection name) -> (weight1 [in, rank], weight2 [rank, out], bias [out] or None)

# config.json entries that make the saved folder load through the Auto classes and the ASR pipeline.
AUTO_MAP = {
    "AutoConfig": "configuration_lite_whisper.LiteWhisperConfig",
    "AutoModel": "modeling_lite_whisper.LiteWhisperModel",
    "AutoModelForSpeechSeq2Seq": "modeling_lite_whisper.LiteWhisperForConditionalGeneration",
}
CUSTOM_PIPELINES = {
    "automatic-speech-recognition": {
        "impl": "pipeline_lite_whisper.LiteWhisperPipeline",
        "pt": ["AutoModelForSpeechSeq2Seq"],
        "tf": [],
        "type": "audio",
    }
}

# Keys of a Whisper config.json that describe the Whisper class or checkpoint, not the architecture.
_NOT_INHERITED = (
    "model_type", "architectures", "auto_map", "custom_pipelines", "transformers_version", "_name_or_path"
)


def lite_config_from_whisper(whisper_config: WhisperConfig, low_rank_config: list[dict[str, int]]) -> LiteWhisperConfig:
    """The LiteWhisperConfig of `whisper_config`'s architecture with the given per-layer ranks (validated)."""
    fields = {k: v for k, v in whisper_config.to_dict().items() if k not in _NOT_INHERITED}
    attn = getattr(whisper_config, "_attn_implementation", None)
    config = LiteWhisperConfig(low_rank_config=low_rank_config, attn_implementation=attn, **fields)
    config.architectures = [LiteWhisperForConditionalGeneration.__name__]
    return config


def _ranks_from_factors(factors: FactorTable, config: WhisperConfig) -> list[dict[str, int]]:
    """low_rank_config implied by `factors`, after checking each factor's shape against the projection's."""
    ranks: list[dict[str, int]] = [{} for _ in range(config.encoder_layers)]
    for (layer, name), (weight1, weight2, bias) in factors.items():
        where = f"factors for encoder layer {layer}, {name}"
        if name not in PROJECTIONS:
            raise ValueError(f"{where}: unknown projection, expected one of {', '.join(PROJECTIONS)}")
        if not 0 <= layer < config.encoder_layers:
            raise ValueError(f"{where}: the encoder has layers 0..{config.encoder_layers - 1}")
        d_in, d_out = projection_shape(config, name)
        rank = weight1.shape[-1] if weight1.ndim == 2 else -1
        expected = {"weight1": (d_in, rank), "weight2": (rank, d_out), "bias": (d_out,)}
        for label, tensor in (("weight1", weight1), ("weight2", weight2), ("bias", bias)):
            if tensor is not None and tuple(tensor.shape) != expected[label]:
                raise ValueError(
                    f"{where}: {label} has shape {list(tensor.shape)}, expected {list(expected[label])} "
                    "(weight1 [in, rank], weight2 [rank, out], bias [out])"
                )
        ranks[layer][name] = rank
    validate_low_rank_config(ranks, config)
    return ranks


def build_lite_whisper(
    whisper_model: WhisperForConditionalGeneration, factors: FactorTable
) -> LiteWhisperForConditionalGeneration:
    """A LiteWhisper whose projections in `factors` are low-rank and whose other weights are the Whisper's.

    `factors` maps (layer index, projection name) to (weight1 [in, rank], weight2 [rank, out], bias [out]);
    a bias of None means zeros. Factors are cast to the replaced weight's dtype and device. The new model
    shares the Whisper's other tensors (no copy): do not modify either in place while both are in use.
    """
    config = whisper_model.config
    lite_config = lite_config_from_whisper(config, _ranks_from_factors(factors, config))
    with torch.device("meta"):  # allocate nothing: every tensor is assigned from the Whisper or the factors
        lite = LiteWhisperForConditionalGeneration(lite_config)

    state = whisper_model.state_dict()
    encoder_layers = whisper_model.model.encoder.layers
    for (layer, name), (weight1, weight2, bias) in factors.items():
        dense = get_projection(encoder_layers[layer], name).weight
        prefix = f"model.encoder.layers.{layer}.{PROJECTION_MODULES[name]}."
        state.pop(prefix + "weight")
        state.pop(prefix + "bias", None)
        if bias is None:
            bias = torch.zeros(dense.shape[0])
        for key, tensor in (("weight1", weight1), ("weight2", weight2), ("bias", bias)):
            state[prefix + key] = tensor.detach().to(device=dense.device, dtype=dense.dtype)

    lite.load_state_dict(state, strict=True, assign=True)
    lite.tie_weights()
    left = [n for n, t in [*lite.named_parameters(), *lite.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"build_lite_whisper left tensors without values: {left[:5]}")
    lite.generation_config = copy.deepcopy(whisper_model.generation_config)
    lite.train(whisper_model.training)
    return lite


def svd_factors(
    whisper_model: WhisperForConditionalGeneration, low_rank_config: list[dict[str, int]] | None = None
) -> dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Factors of the Whisper's own encoder weights by their SVD, for tests and as a data-free baseline.

    With `low_rank_config=None` every projection is factorized at full rank (min(in, out)), which reproduces
    the Whisper exactly up to rounding; otherwise the listed projections are truncated to the given ranks
    (the best approximation of the weight at that rank, Eckart-Young).
    """
    config = whisper_model.config
    if low_rank_config is None:
        low_rank_config = [{name: min(projection_shape(config, name)) for name in PROJECTIONS}] * config.encoder_layers
    low_rank_config = validate_low_rank_config(low_rank_config, config)
    factors = {}
    for layer, ranks in enumerate(low_rank_config):
        for name, rank in ranks.items():
            dense = get_projection(whisper_model.model.encoder.layers[layer], name)
            with _single_thread():
                weight1, weight2 = _svd_split(dense.weight.detach(), rank)
            bias = dense.bias.detach().clone() if dense.bias is not None else torch.zeros_like(weight2[0])
            factors[(layer, name)] = (weight1, weight2, bias)
    return factors


def _svd_split(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight1 [in, rank], weight2 [rank, out]) with x @ weight1 @ weight2 = x @ weight.T truncated to `rank`.

    The singular vectors come from the eigendecomposition of the smaller Gram matrix in float64: the same
    subspaces as torch.linalg.svd, an order of magnitude faster on CPU for Whisper's 4:1 fc1/fc2 weights.
    """
    w = weight.double()  # [out, in]
    out_features, in_features = w.shape
    if out_features <= in_features:  # left singular vectors U: x @ W.T = (x @ W.T @ U) @ U.T
        u = torch.linalg.eigh(w @ w.T).eigenvectors.flip(-1)[:, :rank]
        weight1, weight2 = w.T @ u, u.T
    else:  # right singular vectors V: x @ W.T = (x @ V) @ (W @ V).T
        v = torch.linalg.eigh(w.T @ w).eigenvectors.flip(-1)[:, :rank]
        weight1, weight2 = v, (w @ v).T
    return weight1.to(weight.dtype).contiguous(), weight2.to(weight.dtype).contiguous()


@contextlib.contextmanager
def _single_thread():
    """Run torch on one thread: its threaded eigensolver is slower on matrices this small, and far slower
    (seconds instead of milliseconds) when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def factors_of(lite: LiteWhisperForConditionalGeneration) -> FactorTable:
    """The (weight1, weight2, bias) of every low-rank projection of a LiteWhisper, detached copies."""
    out = {}
    for idx, layer in enumerate(lite.get_encoder().layers):
        for name in PROJECTIONS:
            module = get_projection(layer, name)
            if isinstance(module, LowRankLinear):
                out[(idx, name)] = tuple(t.detach().clone() for t in (module.weight1, module.weight2, module.bias))
    return out


def dense_whisper(whisper: WhisperForConditionalGeneration,
                  lite: LiteWhisperForConditionalGeneration) -> WhisperForConditionalGeneration:
    """A copy of `whisper` that computes what `lite` computes, its low-rank projections written as dense
    nn.Linear (weight1 @ weight2, and a bias): a LiteWhisper seen as a plain Whisper, so that calibration,
    spectra and sensitivity measure it as they measure an original (the current model of an iterative round).
    Every other encoder tensor is the lite model's (trained norms included)."""
    model = copy.deepcopy(whisper)
    encoder = model.get_encoder()
    own = encoder.state_dict()
    with torch.no_grad():
        for name, tensor in lite.get_encoder().state_dict().items():
            if name in own:
                own[name].copy_(tensor)
    for (idx, name), (weight1, weight2, bias) in factors_of(lite).items():
        old = get_projection(encoder.layers[idx], name)
        new = torch.nn.Linear(old.in_features, old.out_features, bias=True, dtype=old.weight.dtype,
                              device=old.weight.device)
        with torch.no_grad():
            new.weight.copy_((weight1 @ weight2).T)
            new.bias.copy_(bias)
        set_projection(encoder.layers[idx], name, new)
    return model.eval()


def set_fast_path(encoder: torch.nn.Module, enabled: bool) -> None:
    """Turn the LiteWhisper encoder layers' inference fast path on or off (plain Whisper layer forward)."""
    for layer in encoder.layers:
        if hasattr(layer, "fast_path"):
            layer.fast_path = enabled


def save_lite_whisper(
    model: LiteWhisperForConditionalGeneration,
    output_dir: str | Path,
    base_dir: str | Path,
    overwrite: bool = False,
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """Write `model` as a self-contained LiteWhisper folder, atomically (temporary folder, then rename).

    The folder holds model.safetensors and config.json (with `auto_map` for AutoConfig, AutoModel and
    AutoModelForSpeechSeq2Seq, and `custom_pipelines` for the ASR pipeline), the code files of `modeling/`
    byte for byte, and the processor, tokenizer, feature extractor and generation config files of `base_dir`
    (byte for byte, or rewritten so that transformers 4.57 and 5.x both load them: see processor_files).
    `extra_files` ({name: text}, e.g. conversion.json) are written into the folder before it is moved into place.
    Sets `model.config.auto_map` and `model.config.custom_pipelines`.
    """
    if getattr(model.config, "low_rank_config", None) is None:
        raise TypeError(f"save_lite_whisper saves LiteWhisper models (build_lite_whisper), not {type(model).__name__}")
    output_dir, base_dir = Path(output_dir), Path(base_dir)
    check_processor_files(base_dir)
    if output_dir.exists() and not overwrite:
        raise FileExistsError(f"{output_dir} already exists: choose another output folder or pass overwrite=True")
    with atomic.staged_folder(output_dir, overwrite=overwrite) as tmp:
        model.config.auto_map = dict(AUTO_MAP)
        model.config.custom_pipelines = copy.deepcopy(CUSTOM_PIPELINES)
        model.save_pretrained(tmp)
        code_dir = Path(modeling.__file__).parent
        for name in CODE_FILES:
            shutil.copyfile(code_dir / name, tmp / name)
        copy_processor_files(base_dir, tmp)  # its generation_config.json replaces the one save_pretrained wrote
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
    return output_dir


__all__ = [
    "AUTO_MAP",
    "CUSTOM_PIPELINES",
    "PROCESSOR_FILES",
    "FactorTable",
    "build_lite_whisper",
    "lite_config_from_whisper",
    "save_lite_whisper",
    "set_fast_path",
    "svd_factors",
]

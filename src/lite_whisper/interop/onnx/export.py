"""Export a LiteWhisper (or a dense Whisper) folder to ONNX in the layout transformers.js loads.

    MODEL_DIR/onnx/encoder_model.onnx             input_features [batch_size, mels, 3000] -> last_hidden_state
    MODEL_DIR/onnx/decoder_model_merged.onnx      input_ids, encoder_hidden_states, past_key_values.*,
                                                  use_cache_branch -> logits, present.*
    ... _fp16.onnx / _quantized.onnx              the same for `--dtype fp16` / `q8` (transformers.js suffixes)

Exporter: `torch.onnx.export(..., dynamo=True)` (torch.export + onnxscript) on small wrappers that call the
model's own forward, so the graph is exactly what transformers runs (the same code for Whisper and LiteWhisper,
no model-specific ONNX config). optimum / optimum-onnx would be the field's usual choice, but its latest
release pins transformers<4.58 and refuses model_type "lite-whisper". The low-rank projections are exported
through Whisper's plain layer forward (the LiteWhisper fast path is off while exporting), so each one stays two
MatMuls (`x @ weight1 @ weight2 + bias`) and the ONNX encoder keeps the FLOP savings.

The decoder is exported twice (first step without past key/values, later steps with them) and merged into one
file with an `If` on `use_cache_branch` (`graph.merge_decoders`), the file transformers.js looks for.
Quantized (q8, dynamic int8 weights) and fp16 variants are made from the two decoder parts before merging
(quantizing a merged file would leave the weights inside the `If` untouched). q8 weights are per channel and 7-bit
(`quantize_q8`), and a LiteWhisper's q8 encoder is exported from a copy whose factor pairs are rebalanced on the
check audio (`balanced_encoder`: the same function, an intermediate that int8 does not crush).

Every export is checked before it is moved into place: onnxruntime against PyTorch on real audio
(`check`), and the export fails beyond the tolerances stated there. Files are written to a staging folder beside
the target and renamed into place (`lite_whisper.atomic`): a failed or interrupted export leaves nothing
half-written. The file names and dtype suffixes are those of `layout`.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration
from transformers.cache_utils import EncoderDecoderCache

from lite_whisper import atomic
from lite_whisper.atomic import staged_folder
from lite_whisper.compression import set_fast_path
from lite_whisper.data.assets import speech_set
from lite_whisper.data.audio import decode_audio, load_audio_dataset
from lite_whisper.interop.onnx.check import check_export, pytorch_reference
from lite_whisper.interop.onnx.graph import merge_decoders, save_model, strip_metadata
from lite_whisper.interop.onnx.layout import DECODER, DTYPES, ENCODER, REPORT, SUFFIXES
from lite_whisper.modeling import LiteWhisperForConditionalGeneration, LowRankLinear

MODEL_TYPES = ("whisper", "lite-whisper")
# q8 of a LiteWhisper encoder: half of each intermediate channel's spread moves into weight2 (balanced_encoder).
# tiny.en at 70%, 4 real clips, cosine of the q8 encoder output to the fp32 one: 0.960 as exported before
# (per tensor), 0.995 rebalanced at 0.5 with per-channel 7-bit weights (0.75: 0.994; not rebalanced: 0.965).
BALANCE = 0.5
# ... and the projections whose int8 output distorts most (q8_outliers) stay float32: on that model the last layer's
# fc2, whose input is the GELU output with its outliers (cosine 0.995 -> 0.998; the original's q8 encoder: 0.997).
KEEP_FP32_SHARE = 1 / 16
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
# torch.export specializes dimensions seen with size 1 or equal sizes: trace with distinct sizes > 1.
_TRACE_BATCH, _TRACE_PROMPT, _TRACE_PAST, _TRACE_NEW = 2, 3, 5, 2


class ExportCheckFailed(ValueError):
    """onnxruntime disagrees with PyTorch beyond the tolerance: the export is not written."""


@dataclass
class ExportResult:
    output: Path
    files: list[tuple[str, int]]  # (file name, bytes)
    checks: list[dict] = field(default_factory=list)
    seconds: float = 0.0


# --- validation ---------------------------------------------------------------------------------------------------


def require_onnx_packages() -> None:
    """Raise ImportError naming the missing packages and the install command."""
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"ONNX export needs {', '.join(missing)}: pip install 'lite-whisper[onnx]' "
                          "(onnx, onnxscript, onnxruntime)")


def validate_dtypes(dtypes: Sequence[str]) -> list[str]:
    dtypes = list(dict.fromkeys(dtypes))  # keep order, drop repeats
    unknown = [d for d in dtypes if d not in SUFFIXES]
    if unknown or not dtypes:
        raise ValueError(f"--dtype {' '.join(unknown) or '(none)'}: choose among {', '.join(DTYPES)}")
    return dtypes


def read_config(model_dir: Path) -> dict:
    """The folder's config.json, checked to be a Whisper or LiteWhisper (clear errors before any loading)."""
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir} is not a folder: give a Whisper or LiteWhisper model folder "
                                "(from `lite-whisper convert` or `import-ct2`)")
    path = model_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} has no config.json: give a Whisper or LiteWhisper model folder")
    config = json.loads(path.read_text())
    if config.get("model_type") not in MODEL_TYPES:
        raise ValueError(f"{model_dir} holds a {config.get('model_type')!r} model: only Whisper and LiteWhisper "
                         f"({', '.join(MODEL_TYPES)}) can be exported")
    for name in ("preprocessor_config.json", "generation_config.json"):
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{model_dir} has no {name}: transformers.js and the export checks need the "
                                    "processor and generation files next to config.json")
    return config


def output_folder(model_dir: Path, output: Path | None, overwrite: bool, check_audio=None) -> Path:
    """The ONNX folder (default MODEL_DIR/onnx): an empty one is reused; one holding files only with
    `overwrite`; never the model folder itself, around it, or around or inside the check audio (atomic.check_target)."""
    out = Path(output) if output is not None else model_dir / "onnx"
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder: choose another --output")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} already holds files: pass --overwrite to replace it, or choose --output")
    inputs = [(f"the --check-audio {check_audio}", check_audio)] if check_audio is not None else []
    return atomic.check_target(out, inputs=inputs, containers=[model_dir], overwrite=True)


# --- loading ------------------------------------------------------------------------------------------------------


def load_model(model_dir: Path) -> nn.Module:
    """The model in float32, eval mode, with transformers' default attention (the PyTorch reference)."""
    config = json.loads((model_dir / "config.json").read_text())
    lite = config["model_type"] == "lite-whisper"
    cls = LiteWhisperForConditionalGeneration if lite else WhisperForConditionalGeneration
    return cls.from_pretrained(model_dir, dtype=torch.float32).eval()


class _ExportMode:
    """Whisper's plain encoder layer forward (each low-rank projection exported as its two MatMuls) and, for the
    decoder, eager attention (SDPA's `is_causal` cannot be symbolic in torch.export); restored on exit. The
    encoder keeps the attention it was loaded with (SDPA), as `bench --onnx` exports it."""

    def __init__(self, model: nn.Module, attention: str | None = None) -> None:
        self.model, self.attention = model, attention
        self.loaded = model.config._attn_implementation

    def __enter__(self):
        if self.attention:
            self.model.set_attn_implementation(self.attention)
        set_fast_path(self.model.get_encoder(), False)
        return self.model

    def __exit__(self, *exc) -> None:
        if self.attention:
            self.model.set_attn_implementation(self.loaded)
        set_fast_path(self.model.get_encoder(), True)


# --- wrappers: the model's own forward, with flat tensor inputs and outputs ---------------------------------------


def cache_names(num_layers: int) -> list[str]:
    """`{layer}.{decoder|encoder}.{key|value}` in the order of the decoder's inputs and outputs."""
    return [f"{i}.{part}.{kv}" for i in range(num_layers) for part in ("decoder", "encoder") for kv in ("key", "value")]


class EncoderWrapper(nn.Module):
    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_features).last_hidden_state


class FirstStepDecoder(nn.Module):
    """The prompt, no past: logits and every layer's self- and cross-attention keys/values."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, encoder_hidden_states: torch.Tensor):
        out = self.model(decoder_input_ids=input_ids, encoder_outputs=(encoder_hidden_states,), use_cache=True)
        return (out.logits, *_flatten_cache(out.past_key_values))


class NextStepDecoder(nn.Module):
    """Later steps: new tokens with the past keys/values; the cross-attention ones are passed through."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, encoder_hidden_states: torch.Tensor, *past: torch.Tensor):
        cache = EncoderDecoderCache([tuple(past[4 * i:4 * i + 4]) for i in range(len(past) // 4)])
        out = self.model(decoder_input_ids=input_ids, encoder_outputs=(encoder_hidden_states,),
                         past_key_values=cache, use_cache=True)
        present = list(_flatten_cache(out.past_key_values))
        for i in range(len(past) // 4):  # the cross-attention cache does not change after the first step
            present[4 * i + 2], present[4 * i + 3] = past[4 * i + 2], past[4 * i + 3]
        return (out.logits, *present)


def _flatten_cache(cache) -> list[torch.Tensor]:
    tensors = []
    for self_layer, cross_layer in zip(cache.self_attention_cache.layers, cache.cross_attention_cache.layers):
        tensors += [self_layer.keys, self_layer.values, cross_layer.keys, cross_layer.values]
    return tensors


# --- export -------------------------------------------------------------------------------------------------------


def _to_onnx(module: nn.Module, args: tuple, input_names: list[str], output_names: list[str], dynamic_shapes):
    """torch.onnx.export (dynamo) to an in-memory onnx.ModelProto, without the exporter's metadata."""
    # "torchvision is not installed. Skipping torchvision::nms" and the like: not ours to fix
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's and transformers' tracing warnings
        program = torch.onnx.export(module, args, dynamo=True, input_names=input_names, output_names=output_names,
                                    dynamic_shapes=dynamic_shapes, verbose=False, report=False)
    return strip_metadata(program.model_proto)


def export_encoder(encoder: nn.Module, num_mel_bins: int, frames: int):
    """The encoder as an onnx.ModelProto: input_features [batch_size, mels, frames] -> last_hidden_state."""
    batch = torch.export.Dim("batch_size")
    features = torch.randn(_TRACE_BATCH, num_mel_bins, frames)
    return _to_onnx(EncoderWrapper(encoder), (features,), ["input_features"], ["last_hidden_state"],
                    {"input_features": {0: batch}})


def export_decoders(model: nn.Module):
    """(first-step decoder, next-step decoder) as onnx.ModelProtos, with the names transformers.js uses."""
    config = model.config
    layers, heads = config.decoder_layers, config.decoder_attention_heads
    head_dim, frames = config.d_model // heads, config.max_source_positions
    names = cache_names(layers)
    batch = torch.export.Dim("batch_size")
    length = torch.export.Dim("decoder_sequence_length", max=config.max_target_positions)
    past = torch.export.Dim("past_sequence_length", min=1, max=config.max_target_positions - 1)
    hidden = torch.randn(_TRACE_BATCH, frames, config.d_model)
    ids = torch.randint(0, config.vocab_size, (_TRACE_BATCH, _TRACE_PROMPT))
    present = ["logits", *(f"present.{n}" for n in names)]
    first = _to_onnx(FirstStepDecoder(model), (ids, hidden), ["input_ids", "encoder_hidden_states"], present,
                     {"input_ids": {0: batch, 1: length}, "encoder_hidden_states": {0: batch}})
    past_kv = [torch.randn(_TRACE_BATCH, heads, frames if ".encoder." in n else _TRACE_PAST, head_dim) for n in names]
    ids = torch.randint(0, config.vocab_size, (_TRACE_BATCH, _TRACE_NEW))
    dynamic = {"input_ids": {0: batch, 1: length}, "encoder_hidden_states": {0: batch},
               "past": tuple({0: batch} if ".encoder." in n else {0: batch, 2: past} for n in names)}
    following = _to_onnx(NextStepDecoder(model), (ids, hidden, *past_kv),
                         ["input_ids", "encoder_hidden_states", *(f"past_key_values.{n}" for n in names)], present,
                         dynamic)
    return first, following


def merged_dims(config) -> tuple[dict, dict]:
    """Input and output dimensions of the merged decoder, as transformers.js reads them: the batch dimension is
    named `batch_size` (it fills that symbol with the batch size and every other symbol with 0 when it makes the
    first step's empty past tensors), the past lengths are symbolic."""
    heads, head_dim = config.decoder_attention_heads, config.d_model // config.decoder_attention_heads
    inputs = {"input_ids": ["batch_size", "decoder_sequence_length"],
              "encoder_hidden_states": ["batch_size", "encoder_sequence_length", config.d_model]}
    outputs = {"logits": ["batch_size", "decoder_sequence_length", config.vocab_size]}
    for name in cache_names(config.decoder_layers):
        length = "encoder_sequence_length_out" if ".encoder." in name else "past_sequence_length"
        inputs[f"past_key_values.{name}"] = ["batch_size", heads, length, head_dim]
        present = "encoder_sequence_length_out" if ".encoder." in name else "present_sequence_length"
        outputs[f"present.{name}"] = ["batch_size", heads, present, head_dim]
    return inputs, outputs


# --- dtypes -------------------------------------------------------------------------------------------------------


def low_rank_matmuls(model) -> dict[str, str]:
    """{MatMul node name: weight name} of the low-rank factors (`weight1`, `weight2`) in an onnx.ModelProto."""
    weights = {i.name for i in model.graph.initializer}
    return {node.name: node.input[1] for node in model.graph.node
            if node.op_type == "MatMul" and node.input[1] in weights and node.input[1].endswith(("weight1", "weight2"))}


def quantize_q8(source: Path, target: Path, *, per_channel: bool = True, reduce_range: bool = True,
                keep_fp32: Sequence[str] = ()) -> Path:
    """Dynamic int8 quantization of the MatMul weights (activations quantized at run time): transformers.js's q8.

    Only MatMul: ConvInteger (the encoder's two convolutions) is missing from onnxruntime-web, and the embedding
    Gather shares its table with the output projection. `per_channel`: one scale per output column (else one
    per tensor); `reduce_range`: 7-bit weights, so that x86 CPUs without VNNI (AVX2's u8 x s8 pair sums saturate
    int16) compute them exactly: per channel without it, the lite tiny.en encoder fell to cosine 0.60 to its fp32
    output on this machine; `keep_fp32`: MatMul node names left in float32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
                     per_channel=per_channel, reduce_range=reduce_range, nodes_to_exclude=list(keep_fp32) or None,
                     extra_options={"MatMulConstBOnly": True},
                     use_external_data_format=source.with_name(f"{source.name}_data").exists())
    return target


def balanced_encoder(encoder: nn.Module, features: torch.Tensor, strength: float = BALANCE) -> nn.Module:
    """A copy of the encoder computing the same function, each low-rank projection's split rebalanced for int8.

    LiteASR's factors carry the principal components' variances in the intermediate `x @ weight1` (channel i has
    the i-th largest variance, the last ones orders of magnitude smaller), and run-time int8 quantization of that
    intermediate, one scale per tensor, rounds the small channels away. Channel i is divided by s_i ** strength in
    weight1 and multiplied by it in weight2 (s_i: its RMS on `features`), moving part of the spread into the
    weights, which are quantized per column (SmoothQuant's migration, inside one factorized projection)."""
    copy_ = copy.deepcopy(encoder).eval()
    set_fast_path(copy_, False)  # each factor its own MatMul, as exported
    low_rank = {name: m for name, m in copy_.named_modules() if isinstance(m, LowRankLinear)}
    squares = {}
    hooks = [m.register_forward_hook(lambda mod, args, out, name=name: squares.__setitem__(
        name, (args[0] @ mod.weight1).pow(2).flatten(0, -2).mean(0))) for name, m in low_rank.items()]
    try:
        with torch.no_grad():
            copy_(features)
    finally:
        for hook in hooks:
            hook.remove()
    with torch.no_grad():
        for name, m in low_rank.items():
            scale = squares[name].sqrt().clamp_min(1e-12) ** strength
            m.weight1.div_(scale)
            m.weight2.mul_(scale[:, None])
    return copy_


def _to_fp16(source: Path, target: Path) -> Path:
    """float16 weights and activations; inputs and outputs stay float32 (what transformers.js feeds)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True, disable_shape_infer=True)
    return save_model(model, target)


def _fake_int8_activation(x: torch.Tensor) -> torch.Tensor:
    """onnxruntime's DynamicQuantizeLinear, simulated: uint8, one scale and zero point per tensor, range with 0."""
    low, high = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    scale = max(high - low, 1e-12) / 255
    zero = round(-low / scale)
    return ((x / scale).round() + zero).clamp(0, 255).sub(zero) * scale


def _fake_int8_weight(w: torch.Tensor) -> torch.Tensor:
    """quantize_q8's weights, simulated: one scale per output column, 7 bits."""
    scale = w.abs().amax(0).clamp_min(1e-12) / 63
    return (w / scale).round().clamp(-64, 63) * scale


def q8_outliers(encoder: nn.Module, features: torch.Tensor, share: float = KEEP_FP32_SHARE) -> list[str]:
    """Names of the low-rank projections whose int8 arithmetic moves the encoder's output most: each projection
    alone computed as quantize_q8 and onnxruntime would (simulated), the relative change of the encoder's output on
    `features` measured; the worst `share` of them (at least one). One encoder pass per projection."""
    low_rank = {name: m for name, m in encoder.named_modules() if isinstance(m, LowRankLinear)}
    if not low_rank:
        return []

    def int8(mod, args, out):
        z = _fake_int8_activation(args[0]) @ _fake_int8_weight(mod.weight1)
        y = _fake_int8_activation(z) @ _fake_int8_weight(mod.weight2)
        return y if mod.bias is None else y + mod.bias

    with torch.no_grad():
        exact = encoder(features).last_hidden_state
        errors = {}
        for name, module in low_rank.items():
            hook = module.register_forward_hook(int8)
            try:
                errors[name] = ((encoder(features).last_hidden_state - exact).norm() / exact.norm()).item()
            finally:
                hook.remove()
    return sorted(errors, key=errors.get, reverse=True)[:max(1, round(share * len(errors)))]


def matmul_nodes_of(model, module_names: Sequence[str]) -> list[str]:
    """The MatMul nodes of an exported encoder that apply the factors of the named low-rank projections."""
    wanted = tuple(f"{name}.{factor}" for name in module_names for factor in ("weight1", "weight2"))
    return [node for node, weight in low_rank_matmuls(model).items() if weight.endswith(wanted)]


def write_dtype(parts: Path, out: Path, dtype: str, config, keep_fp32: Sequence[str] = ()) -> list[Path]:
    """Encoder and merged decoder files of `dtype` in `out`, from the fp32 parts in `parts` (a q8 encoder from
    `encoder_balanced.onnx` when there is one, its MatMuls `keep_fp32` left in float32)."""
    import onnx

    suffix = SUFFIXES[dtype]
    names = ("encoder", "first_step", "next_step")
    if dtype == "fp32":
        sources = {n: parts / f"{n}.onnx" for n in names}
    else:
        convert = quantize_q8 if dtype == "q8" else _to_fp16
        inputs = {n: parts / f"{n}.onnx" for n in names}
        if dtype == "q8" and (parts / "encoder_balanced.onnx").is_file():
            inputs["encoder"] = parts / "encoder_balanced.onnx"
        sources = {n: convert(path, parts / f"{n}{suffix}.onnx") for n, path in inputs.items() if n != "encoder"}
        kept = {"keep_fp32": keep_fp32} if dtype == "q8" else {}
        sources["encoder"] = convert(inputs["encoder"], parts / f"encoder{suffix}.onnx", **kept)
    encoder = out / f"{ENCODER}{suffix}.onnx"
    shutil.copyfile(sources["encoder"], encoder)
    inputs, outputs = merged_dims(config)
    merged = merge_decoders(onnx.load(str(sources["first_step"])), onnx.load(str(sources["next_step"])),
                            inputs, outputs)
    return [encoder, save_model(merged, out / f"{DECODER}{suffix}.onnx")]


# --- the command --------------------------------------------------------------------------------------------------


def check_audio_arrays(check_audio: str | Path | None, num_clips: int) -> list:
    """16 kHz mono float32 arrays for the checks: an audiofolder / dataset, audio files, or (default) a few
    synthesized English clips (`lite_whisper.data.assets`, cached)."""
    if num_clips < 1:
        raise ValueError(f"--check-clips {num_clips}: at least one clip is needed")
    if check_audio is None:
        try:
            check_audio = speech_set("test", 4, seed=3)
        except Exception as error:  # no speech engine installed
            raise RuntimeError(f"could not synthesize speech for the export check ({error}): pass --check-audio "
                               "with an audio file or an audiofolder") from error
    path = Path(check_audio)
    if path.is_file():
        return [decode_audio(path)]
    samples = load_audio_dataset(str(check_audio), max_samples=num_clips)
    if not samples:
        raise ValueError(f"{check_audio} holds no audio for the export check")
    return [s.array for s in samples]


def export_onnx(model_dir: str | Path, output: str | Path | None = None, dtypes: Sequence[str] = ("fp32",), *,
                check_audio: str | Path | None = None, check_clips: int = 2, overwrite: bool = False,
                progress: bool = True) -> ExportResult:
    """Export `model_dir` (Whisper or LiteWhisper) to ONNX in `output` (default MODEL_DIR/onnx), check it with
    onnxruntime against PyTorch on real audio (raises ExportCheckFailed beyond the tolerances), then move it into
    place. Writes `export_report.json` (the measured differences) next to the ONNX files."""
    start = time.perf_counter()
    model_dir = Path(model_dir)
    dtypes = validate_dtypes(dtypes)
    if check_clips < 1:  # the options first, then the paths
        raise ValueError(f"--check-clips {check_clips}: at least one clip is needed")
    read_config(model_dir)
    out = output_folder(model_dir, output, overwrite, check_audio)
    require_onnx_packages()
    audio = check_audio_arrays(check_audio, check_clips)

    model = load_model(model_dir)
    config = model.config
    # output_folder() has checked `out`: an empty folder is replaced, one that holds files only with overwrite
    with staged_folder(out, overwrite=True) as tmp:
        parts = tmp / ".parts"
        parts.mkdir()
        steps = tqdm(total=3 + 2 * len(dtypes), desc="export-onnx", disable=not progress)
        with _ExportMode(model):
            steps.set_postfix_str("encoder")
            save_model(export_encoder(model.get_encoder(), config.num_mel_bins, 2 * config.max_source_positions),
                       parts / "encoder.onnx")
            steps.update()
        with _ExportMode(model, attention="eager"):
            steps.set_postfix_str("decoders")
            first, following = export_decoders(model)
            save_model(first, parts / "first_step.onnx")
            save_model(following, parts / "next_step.onnx")
            del first, following
            steps.update(2)
        reference = pytorch_reference(model, WhisperFeatureExtractor.from_pretrained(model_dir), audio)
        keep_fp32 = []
        if "q8" in dtypes and any(isinstance(m, LowRankLinear) for m in model.get_encoder().modules()):
            features = torch.from_numpy(reference["features"])
            balanced = balanced_encoder(model.get_encoder(), features)
            graph = export_encoder(balanced, config.num_mel_bins, 2 * config.max_source_positions)
            keep_fp32 = matmul_nodes_of(graph, q8_outliers(balanced, features))
            save_model(graph, parts / "encoder_balanced.onnx")
            del balanced, graph
        checks = []
        for dtype in dtypes:
            steps.set_postfix_str(dtype)
            write_dtype(parts, tmp, dtype, config, keep_fp32)
            steps.update()
            checks.append(check_export(tmp, reference, dtype))
            steps.update()
        steps.close()
        shutil.rmtree(parts)
        failed = [c for c in checks if not c["passed"]]
        report = {"exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}",
                  "checks": checks, "transformers.js": "onnx/encoder_model{suffix}.onnx + "
                  "onnx/decoder_model_merged{suffix}.onnx", "suffixes": {d: SUFFIXES[d] for d in dtypes}}
        (tmp / REPORT).write_text(json.dumps(report, indent=2) + "\n")
        if failed:
            raise ExportCheckFailed(
                "onnxruntime disagrees with PyTorch beyond the tolerance, so nothing was written: "
                + "; ".join(c["summary"] for c in failed))
    files = sorted((p.name, p.stat().st_size) for p in out.iterdir() if p.is_file())
    return ExportResult(out, files, checks, time.perf_counter() - start)


__all__ = ["ExportCheckFailed", "ExportResult", "export_decoders", "export_encoder", "export_onnx", "low_rank_matmuls",
           "balanced_encoder", "matmul_nodes_of", "merged_dims", "q8_outliers", "quantize_q8", "require_onnx_packages", "validate_dtypes"]

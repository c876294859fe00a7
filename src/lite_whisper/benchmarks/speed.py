"""Speed benchmark: how much faster a LiteWhisper encoder runs than its dense base, against what its FLOPs say.

Three measurements, each against the dense Whisper it was converted from:
- encoder latency on one 30 s window (median of interleaved runs after warm-up; wall clock, and process CPU
  time on CPU), the speedup, and the FLOP ratio computed from the shapes (`encoder_flops`);
- optionally the same LiteWhisper encoder with its fast path turned off (`--plain`), to show what the
  inference optimizations of `modeling_lite_whisper.py` are worth;
- end to end: greedy generate() of a speech set, warm, batches alternating, median of runs (`timing`), with the
  encoder's seconds within those calls and the tokens decoded per clip beside the real-time factor.

`bench_shape` does the encoder part without weights: random encoders of a named Whisper shape (large-v3, ...)
with uniform ranks at a given fraction of the encoder parameters, so the measurement is reproducible anywhere.
Runs of the models alternate (and the first of each round rotates) so that both see the same machine load.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from transformers import AutoProcessor, WhisperConfig, WhisperForConditionalGeneration
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from lite_whisper.compression import encoder_flops, encoder_params, projection_budget

from lite_whisper import modeling
from lite_whisper.compression import set_fast_path
from lite_whisper.data.assets import speech_set
from lite_whisper.data.audio import load_audio_dataset
from lite_whisper.evaluation.evaluate import transcribe
from lite_whisper.evaluation.loading import trust_for
from lite_whisper.modeling import (
    PROJECTIONS,
    LiteWhisperConfig,
    LiteWhisperEncoder,
    LiteWhisperForConditionalGeneration,
    projection_shape,
)
from lite_whisper.timing import Transcriber, generate_batch, time_runs, time_transcription
from lite_whisper.wer import word_error_rate
from lite_whisper.whisper import generate_kwargs, is_english

WINDOW_SECONDS = 30
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

# Encoder shapes of the released Whisper models (large-v3-turbo has large-v3's encoder).
WHISPER_SHAPES = {
    "tiny": dict(d_model=384, encoder_layers=4, encoder_attention_heads=6, encoder_ffn_dim=1536, num_mel_bins=80),
    "base": dict(d_model=512, encoder_layers=6, encoder_attention_heads=8, encoder_ffn_dim=2048, num_mel_bins=80),
    "small": dict(d_model=768, encoder_layers=12, encoder_attention_heads=12, encoder_ffn_dim=3072, num_mel_bins=80),
    "medium": dict(d_model=1024, encoder_layers=24, encoder_attention_heads=16, encoder_ffn_dim=4096,
                   num_mel_bins=80),
    "large-v3": dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120,
                     num_mel_bins=128),
}
WHISPER_SHAPES["large-v3-turbo"] = WHISPER_SHAPES["large-v3"]


# --- timing -------------------------------------------------------------------------------------------------------


def window_features(config, batch_size: int, device: torch.device, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """A batch of 30 s log-mel windows (random values: the encoder's work does not depend on them)."""
    frames = 2 * config.max_source_positions  # conv2 halves the 100 frames/s of the mel spectrogram
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, config.num_mel_bins, frames, generator=generator).to(device, dtype)


# --- shapes, ranks, FLOPs -----------------------------------------------------------------------------------------


def config_ranks(config) -> dict[tuple[int, str], int]:
    """(layer, projection) -> rank of every low-rank projection of a LiteWhisper config (none for a Whisper)."""
    low_rank = getattr(config, "low_rank_config", None) or []
    return {(i, name): rank for i, ranks in enumerate(low_rank) for name, rank in ranks.items()}


def encoder_cost(config) -> dict:
    """Parameters and FLOPs of the encoder described by `config`, dense and at its ranks, from the shapes."""
    ranks = config_ranks(config)
    dense_flops, lite_flops = encoder_flops(config), encoder_flops(config, ranks)
    dense_params, lite_params = encoder_params(config), encoder_params(config, ranks)
    return {
        "baseline_params": dense_params,
        "lite_params": lite_params,
        "params_fraction": lite_params / dense_params,
        "baseline_gflops": dense_flops / 1e9,
        "lite_gflops": lite_flops / 1e9,
        "flop_ratio": dense_flops / lite_flops,
    }


def uniform_low_rank_config(config, fraction: float, multiple: int = 16) -> list[dict[str, int]]:
    """One rank for every projection (a multiple of `multiple`), the largest keeping the encoder's parameters
    at or under `fraction` of the dense count."""
    if not 0 < fraction < 1:
        raise ValueError(f"--fraction {fraction}: expected a fraction of the encoder parameters in (0, 1)")
    weight_budget, _ = projection_budget(config, target_params=fraction)
    per_rank = config.encoder_layers * sum(sum(projection_shape(config, name)) for name in PROJECTIONS)
    rank = int(weight_budget // per_rank) // multiple * multiple
    if rank < multiple:
        raise ValueError(f"--fraction {fraction} is too small for this shape: not even rank {multiple} fits")
    return [{name: rank for name in PROJECTIONS} for _ in range(config.encoder_layers)]


def shape_config(shape: str, fraction: float, layers: int | None = None) -> LiteWhisperConfig:
    """LiteWhisperConfig of Whisper `shape` (optionally with fewer layers) at uniform ranks, SDPA attention."""
    if shape not in WHISPER_SHAPES:
        raise ValueError(f"unknown Whisper shape {shape!r}: choose one of {', '.join(WHISPER_SHAPES)}")
    fields = dict(WHISPER_SHAPES[shape])
    if layers is not None:
        if layers < 1:
            raise ValueError(f"--layers {layers}: expected at least 1 encoder layer")
        fields["encoder_layers"] = layers
    dense = LiteWhisperConfig(**fields, attn_implementation="sdpa")
    return LiteWhisperConfig(low_rank_config=uniform_low_rank_config(dense, fraction), **fields,
                             attn_implementation="sdpa")


# --- loading ------------------------------------------------------------------------------------------------------


def baseline_from_conversion(model_dir: Path) -> str:
    """The base model recorded in `model_dir/conversion.json` (written by `lite-whisper convert`)."""
    report = model_dir / "conversion.json"
    base = json.loads(report.read_text()).get("base_model") if report.is_file() else None
    if not base:
        raise ValueError(
            f"{model_dir} has no conversion.json naming its base model: pass the dense Whisper it was converted "
            "from with --baseline (a folder or a Hub id)"
        )
    looks_like_path = Path(base).is_absolute() or base.startswith(".") or base.count("/") != 1
    if not Path(base).is_dir() and looks_like_path:  # a Hub id (namespace/name) is left to from_pretrained
        raise FileNotFoundError(
            f"{model_dir}/conversion.json names base model {base}, which is not a folder from here (it is recorded "
            "as given to `lite-whisper convert`): pass the base model folder with --baseline"
        )
    return base


def load_models(model: str | Path, baseline: str | None, device: str, dtype: torch.dtype):
    """(LiteWhisper, dense Whisper, baseline used) in eval mode with SDPA attention, on `device` in `dtype`.

    The LiteWhisper is built with this package's modeling code (the code the folder ships may be older)."""
    model_dir = Path(model)
    if baseline is None:
        if not model_dir.is_dir():
            raise ValueError(f"{model} is not a local folder: pass the dense base model with --baseline")
        baseline = baseline_from_conversion(model_dir)
    kwargs = dict(dtype=dtype, attn_implementation="sdpa")
    lite = LiteWhisperForConditionalGeneration.from_pretrained(model, **kwargs)
    if not config_ranks(lite.config):
        raise ValueError(f"{model} has no low-rank projection: MODEL must be a LiteWhisper (lite-whisper convert)")
    try:
        dense = WhisperForConditionalGeneration.from_pretrained(baseline, **kwargs)
    except OSError as error:
        raise FileNotFoundError(
            f"cannot load the baseline {baseline}: {error}. Pass the dense Whisper folder with --baseline"
        ) from error
    if dense.config.d_model != lite.config.d_model or dense.config.encoder_layers != lite.config.encoder_layers:
        raise ValueError(f"baseline {baseline} is not the same Whisper size as {model}: pass its base with --baseline")
    return lite.to(device).eval(), dense.to(device).eval(), str(baseline)


def _code_note(model_dir: Path) -> str | None:
    shipped = model_dir / "modeling_lite_whisper.py"
    ours = Path(modeling.__file__).parent / "modeling_lite_whisper.py"
    if shipped.is_file() and shipped.read_bytes() != ours.read_bytes():
        return (f"{model_dir}/modeling_lite_whisper.py differs from this package's: timings use the package's code "
                "(re-save the folder to ship it)")
    return None


# --- benchmarks ---------------------------------------------------------------------------------------------------


def _machine(device: torch.device) -> dict:
    info = {"device": str(device), "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def encoder_benchmark(dense: nn.Module, lite: nn.Module, config, batch_size: int, device: torch.device,
                      dtype: torch.dtype, warmup: int, repeats: int, plain: bool) -> dict:
    """Latency of the dense and the LiteWhisper encoders on one batch of 30 s windows, with the cost model."""
    features = window_features(config, batch_size, device, dtype)
    runs = {"baseline": lambda: dense(features), "lite": lambda: lite(features)}
    if plain:
        def run_plain():
            set_fast_path(lite, False)
            try:
                return lite(features)
            finally:
                set_fast_path(lite, True)

        runs["lite_plain"] = run_plain
    load_before = os.getloadavg()
    timings = time_runs(runs, device, warmup=warmup, repeats=repeats)
    result = {"window_seconds": WINDOW_SECONDS, "batch_size": batch_size, "warmup": warmup, "repeats": repeats,
              **timings, **encoder_cost(config)}
    result["speedup"] = timings["baseline"]["median_ms"] / timings["lite"]["median_ms"]
    result["speedup_vs_flop_ratio"] = result["speedup"] / result["flop_ratio"]
    # Per round (both models run back to back, under about the same load), then the median: steadier than the
    # ratio of medians when the machine's load changes during the run.
    pairs = zip(timings["baseline"]["runs_ms"], timings["lite"]["runs_ms"])
    result["speedup_paired"] = statistics.median(b / l for b, l in pairs)
    if plain:
        result["plain_speedup"] = timings["baseline"]["median_ms"] / timings["lite_plain"]["median_ms"]
    result["load_average"] = [round(x, 2) for x in (*load_before, *os.getloadavg())]
    return result


def rtf_benchmark(models: Mapping[str, nn.Module], processors: Mapping[str, object], dataset: str | Path,
                  num_samples: int, batch_size: int, language: str | None, repeats: int = 3) -> dict:
    """Greedy (num_beams=1) transcription of `dataset` by each model: one pass for the transcripts (WER, words;
    it also warms the models), then `timing.time_transcription`: batches alternating between the models, median
    of `repeats` runs, with the encoder's seconds within the same calls and the tokens decoded per clip (a model
    that loops decodes far more, and takes longer for it)."""
    samples = load_audio_dataset(dataset, max_samples=num_samples)
    if not samples:
        raise ValueError(f"{dataset} holds no audio to transcribe")
    arrays = [s.array for s in samples]
    transcribers = {label: Transcriber(m, processors[label], {**generate_kwargs(m, language), "num_beams": 1})
                    for label, m in models.items()}
    texts = {label: transcribe(t.model, t.processor, arrays, t.generate_kwargs, batch_size, progress=False)[0]
             for label, t in transcribers.items()}
    timing = time_transcription(transcribers, arrays, batch_size=batch_size, repeats=repeats)
    references = [s.text for s in samples]
    result = {"decoding": "greedy (num_beams=1), generate()", "dataset": str(dataset), "num_samples": len(samples),
              **{k: v for k, v in timing.items() if k not in models}}
    for label, model in models.items():
        entry = {**timing[label], "seconds": timing[label]["median_seconds"],
                 "words": sum(len(text.split()) for text in texts[label])}
        if all(r is not None for r in references):
            entry["wer"] = word_error_rate(texts[label], references, english=is_english(model, language))
        result[label] = entry
    result["speedup"] = timing["lite"]["speedup"]
    result["speedup_paired"] = timing["lite"]["speedup_paired"]
    return result


def profile_generate(models: Mapping[str, nn.Module], processors: Mapping[str, object], dataset: str | Path,
                     language: str | None, rows: int = 15, batch_size: int = 1) -> dict[str, str]:
    """torch.profiler's top `rows` operators (by self CPU time, or CUDA time on a GPU) of one warm greedy
    generate() of the first `batch_size` clips of `dataset`, per model: where the time of a transcription goes."""
    from torch.profiler import ProfilerActivity, profile

    arrays = [s.array for s in load_audio_dataset(dataset, max_samples=batch_size)]
    tables = {}
    for label, model in models.items():
        transcriber = Transcriber(model, processors[label], {**generate_kwargs(model, language), "num_beams": 1})
        generate_batch(transcriber, arrays)  # warm
        cuda = model.device.type == "cuda"
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as prof:
            generate_batch(transcriber, arrays)
        tables[label] = prof.key_averages().table(sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total",
                                                  row_limit=rows)
    return tables


def bench_model(model: str | Path, baseline: str | None = None, *, device: str = "cpu", dtype: str = "float32",
                batch_size: int = 1, warmup: int = 2, repeats: int = 10, plain: bool = False,
                dataset: str | Path | None = None, rtf_samples: int = 16, rtf_batch_size: int = 8,
                rtf_repeats: int = 3, language: str | None = "en", trust_remote_code: bool = False,
                profile_rows: int = 0) -> dict:
    """Encoder latency, speedup and FLOP ratio of LiteWhisper folder `model` against its dense base, and the
    real-time factor of both on a speech set (`dataset`, default: a synthesized English set; rtf_samples=0 skips).

    Without `baseline`, the base recorded in the folder's conversion.json is used (a lite folder's own weights
    cannot give back the dense ones). A Hub id that ships code needs `trust_remote_code` for its processor
    (the model itself is built with this package's code)."""
    trust = trust_for(model, trust_remote_code)
    torch_device, torch_dtype = _device(device), _dtype(dtype)
    lite, dense, baseline = load_models(model, baseline, device, torch_dtype)
    result = {"model": str(model), "baseline": baseline, "shape": None, "dtype": dtype,
              "attn_implementation": "sdpa", **_machine(torch_device)}
    note = _code_note(Path(model)) if Path(model).is_dir() else None
    if note:
        result["note"] = note
    result["encoder"] = encoder_benchmark(dense.get_encoder(), lite.get_encoder(), lite.config, batch_size,
                                          torch_device, torch_dtype, warmup, repeats, plain)
    result["rtf"] = None
    if rtf_samples > 0:
        if dataset is None:
            dataset = speech_set("test", 96, seed=2)  # the compression benchmark's held-out set
        processors = {"baseline": AutoProcessor.from_pretrained(baseline),
                      "lite": AutoProcessor.from_pretrained(model, trust_remote_code=trust)}
        result["rtf"] = rtf_benchmark({"baseline": dense, "lite": lite}, processors, dataset, rtf_samples,
                                      rtf_batch_size, language, rtf_repeats)
        if profile_rows:
            result["profile"] = profile_generate({"baseline": dense, "lite": lite}, processors, dataset, language,
                                                 profile_rows)
    return result


def bench_shape(shape: str, fraction: float = 0.5, *, layers: int | None = None, device: str = "cpu",
                dtype: str = "float32", batch_size: int = 1, warmup: int = 1, repeats: int = 5,
                plain: bool = False, seed: int = 0) -> dict:
    """Encoder latency of random-weight encoders of Whisper `shape`: dense vs uniform ranks at `fraction` of
    the encoder parameters (`layers` keeps only the first N layers, for machines too slow for the full one)."""
    torch_device, torch_dtype = _device(device), _dtype(dtype)
    config = shape_config(shape, fraction, layers)
    torch.manual_seed(seed)
    dense_config = WhisperConfig(**{k: getattr(config, k) for k in WHISPER_SHAPES[shape]}, attn_implementation="sdpa")
    dense = WhisperEncoder(dense_config).to(torch_device, torch_dtype).eval()
    lite = LiteWhisperEncoder(config).to(torch_device, torch_dtype).eval()
    result = {"model": f"random {shape} encoder, uniform rank {config.low_rank_config[0]['q_proj']}",
              "baseline": f"random {shape} encoder, dense", "shape": shape, "layers": config.encoder_layers,
              "dtype": dtype, "attn_implementation": "sdpa", **_machine(torch_device)}
    result["encoder"] = encoder_benchmark(dense, lite, config, batch_size, torch_device, torch_dtype, warmup,
                                          repeats, plain)
    result["rtf"] = None
    return result


def _device(device: str) -> torch.device:
    torch_device = torch.device(device)
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device is available here; use --device cpu")
    if torch_device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {device}: expected cpu or cuda")
    return torch_device


def _dtype(dtype: str) -> torch.dtype:
    if dtype not in DTYPES:
        raise ValueError(f"--dtype {dtype}: expected one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


# --- report -------------------------------------------------------------------------------------------------------


def format_report(result: dict) -> str:
    """The benchmark as a small plain-text table."""
    enc = result["encoder"]
    lines = [
        f"model     {result['model']}",
        f"baseline  {result['baseline']}",
        f"device    {result['device']} ({result.get('gpu', str(result['torch_threads']) + ' threads')}), "
        f"{result['dtype']}, batch {enc['batch_size']}, SDPA; load average {enc['load_average'][:3]} -> "
        f"{enc['load_average'][3:]}",
        f"encoder params {enc['params_fraction']:.1%} of the dense ({enc['lite_params']:,} / "
        f"{enc['baseline_params']:,}), {enc['lite_gflops']:.1f} / {enc['baseline_gflops']:.1f} GFLOPs per window",
        "",
        f"encoder, one {enc['window_seconds']} s window ({enc['repeats']} runs after {enc['warmup']} warm-up)",
        f"  {'':12s} {'median ms':>10s} {'min ms':>10s}" + (f" {'CPU ms':>10s}" if "cpu_median_ms" in enc["lite"] else ""),
    ]
    for label in ("baseline", "lite", "lite_plain"):
        if label in enc:
            t = enc[label]
            cpu = f" {t['cpu_median_ms']:10.1f}" if "cpu_median_ms" in t else ""
            lines.append(f"  {label:12s} {t['median_ms']:10.1f} {t['min_ms']:10.1f}{cpu}")
    lines.append(f"  speedup {enc['speedup']:.2f}x (median of per-round ratios {enc['speedup_paired']:.2f}x), "
                 f"FLOP ratio {enc['flop_ratio']:.2f}x (speedup / FLOP ratio = {enc['speedup_vs_flop_ratio']:.2f})"
                 + (f"; plain path {enc['plain_speedup']:.2f}x" if "plain_speedup" in enc else ""))
    rtf = result.get("rtf")
    if rtf:
        lines += ["", f"end to end: generate() on {rtf['num_samples']} utterances ({rtf['audio_seconds']:.0f} s), "
                  f"{rtf['decoding']}, batch {rtf['batch_size']}, warm, batches alternating, median of "
                  f"{rtf['repeats']} runs",
                  f"  {'':12s} {'seconds':>8s} {'RTF':>7s} {'encoder s':>10s} {'tokens/clip':>12s} {'decoder calls':>14s}"
                  f" {'words':>6s} {'WER %':>6s}"]
        for label in ("baseline", "lite"):
            e = rtf[label]
            wer = f"{e['wer']:6.1f}" if "wer" in e else f"{'n/a':>6s}"
            lines.append(f"  {label:12s} {e['median_seconds']:8.2f} {e['rtf']:7.4f} {e['encoder_median_seconds']:10.2f} "
                         f"{e['tokens_per_clip']:12.1f} {e['decoder_calls']:14d} {e['words']:6d} {wer}")
        lite = rtf["lite"]
        lines.append(f"  speedup {rtf['speedup']:.2f}x end to end (median of per-run ratios {rtf['speedup_paired']:.2f}x), "
                     f"encoder within generate() {lite['encoder_speedup']:.2f}x; load average "
                     f"{rtf['load_average'][:3]} -> {rtf['load_average'][3:]}")
    for label, table in (result.get("profile") or {}).items():
        lines += ["", f"profile of one warm generate() ({label}), top operators by self time:", table]
    if result.get("note"):
        lines += ["", "note: " + result["note"]]
    return "\n".join(lines)


__all__ = [
    "WHISPER_SHAPES",
    "bench_model",
    "bench_shape",
    "config_ranks",
    "encoder_benchmark",
    "encoder_cost",
    "format_report",
    "profile_generate",
    "rtf_benchmark",
    "shape_config",
    "time_runs",
    "uniform_low_rank_config",
]

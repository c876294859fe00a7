"""onnxruntime CPU encoder latency: a LiteWhisper against its dense base, next to the FLOP ratio.

Both encoders are exported the way `lite-whisper export-onnx` exports them (`export.export_encoder`, the
low-rank projections as two MatMuls each) into a temporary folder, loaded in onnxruntime sessions with the same
thread count, and timed on one batch of 30 s windows in alternation (`bench.time_runs`: the first of each round
rotates, so both see the same machine load). Same inputs, same cost model (`bench.encoder_cost`) as the PyTorch
benchmark, so the two tables compare.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

import torch
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from lite_whisper.benchmarks.speed import WHISPER_SHAPES, WINDOW_SECONDS, encoder_cost, load_models, shape_config, time_runs, window_features
from lite_whisper.compression import set_fast_path
from lite_whisper.interop.onnx.export import export_encoder, require_onnx_packages
from lite_whisper.interop.onnx.graph import save_model
from lite_whisper.modeling import LiteWhisperEncoder


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_encoder_benchmark(dense: torch.nn.Module, lite: torch.nn.Module, config, batch_size: int = 1,
                           warmup: int = 2, repeats: int = 10, threads: int | None = None) -> dict:
    """Median onnxruntime latency of both encoders on `batch_size` 30 s windows, the speedup and the FLOP ratio."""
    require_onnx_packages()
    threads = threads or torch.get_num_threads()
    features = window_features(config, batch_size, torch.device("cpu"), torch.float32).numpy()
    frames = features.shape[-1]
    with tempfile.TemporaryDirectory(prefix="lite-whisper-onnx-bench-") as tmp:
        sessions = {}
        for label, encoder in (("baseline", dense), ("lite", lite)):
            set_fast_path(encoder, False)  # as export-onnx does: each factor its own MatMul
            try:
                path = save_model(export_encoder(encoder.float().eval(), config.num_mel_bins, frames),
                                  Path(tmp) / f"{label}.onnx")
            finally:
                set_fast_path(encoder, True)
            sessions[label] = _session(path, threads)
        runs = {label: (lambda s=s: s.run(None, {"input_features": features})) for label, s in sessions.items()}
        load_before = os.getloadavg()
        timings = time_runs(runs, torch.device("cpu"), warmup=warmup, repeats=repeats)
    import onnxruntime as ort

    result = {"runtime": f"onnxruntime {ort.__version__} CPUExecutionProvider", "threads": threads,
              "window_seconds": WINDOW_SECONDS, "batch_size": batch_size, "warmup": warmup, "repeats": repeats,
              **timings, **encoder_cost(config)}
    result["speedup"] = timings["baseline"]["median_ms"] / timings["lite"]["median_ms"]
    result["speedup_vs_flop_ratio"] = result["speedup"] / result["flop_ratio"]
    pairs = zip(timings["baseline"]["runs_ms"], timings["lite"]["runs_ms"])
    result["speedup_paired"] = statistics.median(b / l for b, l in pairs)
    result["load_average"] = [round(x, 2) for x in (*load_before, *os.getloadavg())]
    return result


def bench_onnx_model(model: str | Path, baseline: str | None = None, **kwargs) -> dict:
    """onnxruntime encoder benchmark of LiteWhisper folder `model` against `baseline` (default: the base named in
    its conversion.json)."""
    lite, dense, baseline = load_models(model, baseline, "cpu", torch.float32)
    result = {"model": str(model), "baseline": baseline, "shape": None, "dtype": "float32"}
    result["encoder"] = onnx_encoder_benchmark(dense.get_encoder(), lite.get_encoder(), lite.config, **kwargs)
    return result


def bench_onnx_shape(shape: str, fraction: float = 0.5, layers: int | None = None, seed: int = 0, **kwargs) -> dict:
    """The same on random-weight encoders of a Whisper shape at uniform ranks (`bench.shape_config`)."""
    config = shape_config(shape, fraction, layers)
    torch.manual_seed(seed)
    dense_config = WhisperConfig(**{k: getattr(config, k) for k in WHISPER_SHAPES[shape]}, attn_implementation="sdpa")
    dense = WhisperEncoder(dense_config).eval()
    lite = LiteWhisperEncoder(config).eval()
    result = {"model": f"random {shape} encoder, uniform rank {config.low_rank_config[0]['q_proj']}",
              "baseline": f"random {shape} encoder, dense", "shape": shape, "layers": config.encoder_layers,
              "dtype": "float32"}
    result["encoder"] = onnx_encoder_benchmark(dense, lite, config, **kwargs)
    return result


def format_onnx_report(result: dict) -> str:
    enc = result["encoder"]
    lines = [
        f"model     {result['model']}",
        f"baseline  {result['baseline']}",
        f"runtime   {enc['runtime']}, {enc['threads']} threads, float32, batch {enc['batch_size']}; load average "
        f"{enc['load_average'][:3]} -> {enc['load_average'][3:]}",
        f"encoder params {enc['params_fraction']:.1%} of the dense ({enc['lite_params']:,} / "
        f"{enc['baseline_params']:,}), {enc['lite_gflops']:.1f} / {enc['baseline_gflops']:.1f} GFLOPs per window",
        "",
        f"ONNX encoder, one {enc['window_seconds']} s window ({enc['repeats']} runs after {enc['warmup']} warm-up)",
        f"  {'':12s} {'median ms':>10s} {'min ms':>10s} {'CPU ms':>10s}",
    ]
    for label in ("baseline", "lite"):
        t = enc[label]
        lines.append(f"  {label:12s} {t['median_ms']:10.1f} {t['min_ms']:10.1f} {t['cpu_median_ms']:10.1f}")
    lines.append(f"  speedup {enc['speedup']:.2f}x (median of per-round ratios {enc['speedup_paired']:.2f}x), "
                 f"FLOP ratio {enc['flop_ratio']:.2f}x (speedup / FLOP ratio = {enc['speedup_vs_flop_ratio']:.2f})")
    return "\n".join(lines)


__all__ = ["bench_onnx_model", "bench_onnx_shape", "format_onnx_report", "onnx_encoder_benchmark"]

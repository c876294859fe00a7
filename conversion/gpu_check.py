#!/usr/bin/env python3
"""The CUDA path, checked on one GPU machine in under 8 minutes, with random weights at real Whisper shapes.

Real weights do not travel to the GPU machine (it reaches no registry and carries 64 MiB), so the models are
random at the shapes of large-v3 (32 + 32 layers, d=1280, 20 heads, 128 mels), large-v3-turbo (the same encoder,
4 decoder layers) and base; only the processor files of the real base and a few synthesized clips are carried.
Random weights decide nothing about accuracy: this checks that the CUDA path runs and how fast it is.

Steps (each timed and recorded; a failing step is recorded with its error and the next one runs):
  1. `lite-whisper convert --device cuda` of the turbo shape at 50% with recovery on the carried clips, in float16
     and in bfloat16 (a handful of recovery steps; --allow-degraded: a random model's transcripts agree with
     nothing);
  2. the calibration in 2 processes over nccl (`convert --num-processes 2`), or why not (one GPU per process);
  3. encoder latency, lite at 50% (uniform ranks) vs dense, large-v3 shape, fp16, batch 1 and 16, eager and
     with torch.compile (regional: each encoder layer compiled, the layers share the code; inductor, and in the
     dry run aot_eager, which traces the same graphs without a C++ compiler);
  4. generate() of lite and dense, large-v3 and turbo shapes, a fixed number of new tokens, batch 1 and 16
     (RTFx = audio seconds / seconds);
  5. torch.profiler's top lines of generate(), lite and dense (turbo shape).

Usage:
  python conversion/gpu_check.py --dry-run --output /tmp/gpu-dry         # here, CPU, tiny shapes (`make test-gpu-check`)
  python conversion/gpu_check.py --prepare outputs/gpu-carry             # here: what the GPU machine needs
On the GPU machine (its image has torch, transformers, accelerate, onnx; not datasets, evaluate, jiwer, soundfile,
soxr, num2words, which travel as wheels: `pip download --no-deps --only-binary=:all: --python-version 3.12
--platform manylinux2014_x86_64 -d .whl datasets dill multiprocess evaluate jiwer rapidfuzz soundfile soxr
num2words docopt`), the device tool's run with carry=["outputs/gpu-carry", ".whl"] and timeout_s=540:
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site &&
  python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . &&
  PYTHONUNBUFFERED=1 python3 conversion/gpu_check.py --carried outputs/gpu-carry --output $OUT

Writes OUTPUT/gpu_check.json (every measurement) and OUTPUT/gpu_check.txt (the summary it prints).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
from transformers import (
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizerFast,
)

from lite_whisper.benchmarks.speed import uniform_low_rank_config
from lite_whisper.modeling import LiteWhisperConfig, LiteWhisperForConditionalGeneration
from lite_whisper.timing import time_runs

PROCESSOR_FILES = ("config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json",
                   "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
                   "merges.txt", "normalizer.json")
REAL_SHAPES = {  # WhisperConfig fields; vocab and special tokens come from the carried base config
    "large-v3": dict(d_model=1280, encoder_layers=32, decoder_layers=32, encoder_attention_heads=20,
                     decoder_attention_heads=20, encoder_ffn_dim=5120, decoder_ffn_dim=5120, num_mel_bins=128),
    "large-v3-turbo": dict(d_model=1280, encoder_layers=32, decoder_layers=4, encoder_attention_heads=20,
                           decoder_attention_heads=20, encoder_ffn_dim=5120, decoder_ffn_dim=5120, num_mel_bins=128),
    "base": dict(d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                 decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048, num_mel_bins=80),
}
DRY_SHAPES = {  # the same roles at tiny dims (the turbo one keeps fewer decoder layers than its encoder)
    "large-v3": dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=256, decoder_ffn_dim=256, num_mel_bins=128),
    "large-v3-turbo": dict(d_model=64, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                           decoder_attention_heads=2, encoder_ffn_dim=256, decoder_ffn_dim=256, num_mel_bins=128),
    "base": dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                 decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128, num_mel_bins=80),
}
CLIPS = 12


# --- what travels ----------------------------------------------------------------------------------------------------


def prepare(target: Path, num_clips: int = CLIPS) -> Path:
    """The processor files of the real whisper base and `num_clips` synthesized clips (an audiofolder)."""
    from lite_whisper.data import assets
    from lite_whisper.interop.pypi_whisper import whisper_model

    base = whisper_model("base")
    clips = assets.speech_set("calibration", num_clips, seed=11)
    if target.exists():
        shutil.rmtree(target)
    (target / "processor").mkdir(parents=True)
    for name in PROCESSOR_FILES:
        if (base / name).is_file():
            shutil.copyfile(base / name, target / "processor" / name)
    shutil.copytree(clips, target / "clips")
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"prepared {target} ({size / 2**20:.1f} MiB): carry it to the GPU machine with the worktree")
    return target


# --- random models at real shapes ------------------------------------------------------------------------------------


def whisper_config(carried: Path, shape: dict) -> WhisperConfig:
    config = WhisperConfig.from_pretrained(carried / "processor")
    config.update(dict(shape))
    config._attn_implementation = "sdpa"
    return config


def random_base_folder(carried: Path, shape: dict, folder: Path, dtype: torch.dtype, device: str) -> Path:
    """A dense Whisper with random weights at `shape`, saved with the carried processor files (what convert reads)."""
    config = whisper_config(carried, shape)
    torch.manual_seed(0)
    with torch.device(device):
        model = WhisperForConditionalGeneration(config).to(dtype)
    model.generation_config = model.generation_config.from_pretrained(carried / "processor")
    model.save_pretrained(folder)
    tokenizer = WhisperTokenizerFast.from_pretrained(carried / "processor")
    WhisperProcessor(WhisperFeatureExtractor(feature_size=shape["num_mel_bins"]), tokenizer).save_pretrained(folder)
    shutil.copyfile(carried / "processor" / "generation_config.json", folder / "generation_config.json")
    return folder


def random_models(carried: Path, shape: dict, fraction: float, dtype: torch.dtype, device: str):
    """(dense Whisper, LiteWhisper at uniform ranks keeping `fraction` of the encoder), random, eval, on device."""
    config = whisper_config(carried, shape)
    lite_config = LiteWhisperConfig(**config.to_dict())
    lite_config.low_rank_config = uniform_low_rank_config(config, fraction)
    lite_config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        dense = WhisperForConditionalGeneration(config).to(dtype).eval()
        lite = LiteWhisperForConditionalGeneration(lite_config).to(dtype).eval()
    for model in (dense, lite):
        model.generation_config = model.generation_config.from_pretrained(carried / "processor")
    return dense, lite


# --- steps -----------------------------------------------------------------------------------------------------------


def run_convert(base: Path, output: Path, clips: Path, fraction: float, device: str, dtype: str,
                extra: list[str]) -> dict:
    """`lite-whisper convert` in a fresh process; RuntimeError with its error lines if it fails."""
    cmd = [sys.executable, "-m", "lite_whisper.cli", "convert", str(base), "--output", str(output),
           "--calibration", str(clips), "--target-params", str(fraction), "--device", device, "--dtype", dtype,
           "--num-samples", str(CLIPS), "--allocation-samples", "4", "--probe-samples", "2", "--batch-size", "4",
           "--recovery-steps", "6", "--recovery-batch-size", "2", "--heldout", "0.25",
           "--allow-degraded", "--overwrite", *extra]
    tic = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - tic
    result = {"command": " ".join(cmd[1:]), "seconds": round(seconds, 1)}
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if "error" in line.lower() and "elastic" not in line]
        raise RuntimeError(f"exit code {proc.returncode} after {seconds:.0f} s: {' | '.join(errors[-5:])}\n"
                           f"{proc.stderr[-1500:]}")
    report = json.loads((output / "conversion.json").read_text())
    result.update({k: report.get(k) for k in ("encoder_params_fraction", "encoder_flops_speedup", "seconds")})
    result["recovery"] = {k: v for k, v in (report.get("recovery") or {}).items() if not isinstance(v, (list, dict))}
    result["processes"] = report.get("processes") or report.get("distributed")
    return result


def step_convert(ctx: dict) -> dict:
    base = random_base_folder(ctx["carried"], ctx["shapes"]["large-v3-turbo"], ctx["work"] / "turbo-base",
                              torch.float16 if ctx["device"] == "cuda" else torch.float32, ctx["device"])
    ctx["turbo_base"] = base
    out = {}
    for dtype in ("float16", "bfloat16"):
        out[dtype] = run_convert(base, ctx["work"] / f"turbo-lite-{dtype}", ctx["carried"] / "clips",
                                 ctx["fraction"], ctx["device"], dtype, ["--recovery", "on"])
    return out


def step_two_processes(ctx: dict) -> dict:
    device = ctx["device"]
    if device == "cuda" and torch.cuda.device_count() < 2:
        return {"skipped": f"{torch.cuda.device_count()} GPU visible: nccl runs one process per GPU (a second "
                "process on the same GPU is refused as a duplicate rank device), so 2-process calibration over "
                "nccl needs 2 GPUs; the CPU dry run checks the same path over gloo"}
    base = ctx.get("turbo_base") or random_base_folder(
        ctx["carried"], ctx["shapes"]["large-v3-turbo"], ctx["work"] / "turbo-base", torch.float32, device)
    result = run_convert(base, ctx["work"] / "turbo-lite-2proc", ctx["carried"] / "clips", ctx["fraction"], device,
                         "float16" if device == "cuda" else "float32",
                         # one clip per window: the few clips, packed, would not make a batch for each process
                         ["--recovery", "off", "--num-processes", "2", "--pack-seconds", "0"])
    result["backend"] = "nccl" if device == "cuda" else "gloo"
    return result


def _compile_layers(encoder: torch.nn.Module, backend: str) -> None:
    for layer in encoder.layers:  # regional compilation: the layers share their code, compiled once
        layer.compile(backend=backend)


def step_encoder_latency(ctx: dict) -> dict:
    device, dtype = torch.device(ctx["device"]), ctx["dtype"]
    dense, lite = random_models(ctx["carried"], ctx["shapes"]["large-v3"], ctx["fraction"], dtype, ctx["device"])
    dense_enc, lite_enc = dense.get_encoder(), lite.get_encoder()
    del dense, lite
    out = {"ranks": lite_enc.config.low_rank_config[0], "compile_backend": ctx["compile_backend"]}
    mels = dense_enc.config.num_mel_bins
    for compiled in (False, True):
        if compiled:
            _compile_layers(dense_enc, ctx["compile_backend"])
            _compile_layers(lite_enc, ctx["compile_backend"])
        for batch in ctx["batches"]:
            features = torch.randn(batch, mels, 3000, device=device, dtype=dtype)
            tic = time.perf_counter()
            timings = time_runs({"dense": lambda: dense_enc(features), "lite": lambda: lite_enc(features)}, device,
                                warmup=2, repeats=ctx["repeats"])
            key = f"batch{batch}" + ("_compiled" if compiled else "")
            out[key] = {"dense_ms": timings["dense"]["median_ms"], "lite_ms": timings["lite"]["median_ms"],
                        "speedup": timings["dense"]["median_ms"] / timings["lite"]["median_ms"],
                        "seconds_with_warmup": round(time.perf_counter() - tic, 1)}
    return out


def step_generate(ctx: dict) -> dict:
    device, dtype = torch.device(ctx["device"]), ctx["dtype"]
    out = {}
    for name in ("large-v3-turbo", "large-v3"):
        dense, lite = random_models(ctx["carried"], ctx["shapes"][name], ctx["fraction"], dtype, ctx["device"])
        mels = dense.config.num_mel_bins
        for batch in ctx["batches"]:
            features = torch.randn(batch, mels, 3000, device=device, dtype=dtype)
            kwargs = dict(max_new_tokens=ctx["new_tokens"], min_new_tokens=ctx["new_tokens"], num_beams=1,
                          do_sample=False)
            timings = time_runs({m: (lambda model=model: model.generate(features, **kwargs))
                                 for m, model in (("dense", dense), ("lite", lite))}, device, warmup=1,
                                repeats=max(2, ctx["repeats"] // 2))
            audio = 30.0 * batch
            out[f"{name}_batch{batch}"] = {
                "new_tokens": ctx["new_tokens"], "dense_ms": timings["dense"]["median_ms"],
                "lite_ms": timings["lite"]["median_ms"],
                "dense_rtfx": audio / (timings["dense"]["median_ms"] / 1e3),
                "lite_rtfx": audio / (timings["lite"]["median_ms"] / 1e3),
                "speedup": timings["dense"]["median_ms"] / timings["lite"]["median_ms"]}
        del dense, lite
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def step_profile(ctx: dict) -> dict:
    from torch.profiler import ProfilerActivity, profile

    device, dtype = torch.device(ctx["device"]), ctx["dtype"]
    dense, lite = random_models(ctx["carried"], ctx["shapes"]["large-v3-turbo"], ctx["fraction"], dtype,
                               ctx["device"])
    features = torch.randn(1, dense.config.num_mel_bins, 3000, device=device, dtype=dtype)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    out = {}
    for name, model in (("dense", dense), ("lite", lite)):
        kwargs = dict(max_new_tokens=16, min_new_tokens=16, num_beams=1, do_sample=False)
        with torch.inference_mode():
            model.generate(features, **kwargs)  # warm
            with profile(activities=activities) as prof:
                model.generate(features, **kwargs)
        out[name] = prof.key_averages().table(sort_by=sort, row_limit=12)
    return out


STEPS = [("convert", step_convert), ("two_processes", step_two_processes), ("encoder_latency", step_encoder_latency),
         ("generate", step_generate), ("profile", step_profile)]


# --- driver ----------------------------------------------------------------------------------------------------------


def environment(device: str) -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(), "device": device,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if device == "cuda":
        info.update(gpu=torch.cuda.get_device_name(0), gpus=torch.cuda.device_count(),
                    capability=".".join(map(str, torch.cuda.get_device_capability(0))))
    return info


def summary(report: dict) -> str:
    lines = [f"gpu_check ({'dry run, CPU, tiny shapes' if report['dry_run'] else 'real shapes'}): "
             f"{json.dumps(report['environment'])}"]
    for name, step in report["steps"].items():
        status = "FAILED" if "error" in step else "ok"
        lines.append(f"\n== {name}: {status} in {step['seconds']:.0f} s")
        if "error" in step:
            lines.append(step["error"][-1500:])
            continue
        for key, value in step["result"].items():
            if isinstance(value, str) and "\n" in value:  # profiler tables
                lines += [f"  {key}:", value]
            else:
                lines.append(f"  {key}: {json.dumps(value, default=str)}")
    return "\n".join(lines)


def run(carried: Path, output: Path, dry_run: bool) -> dict:
    device = "cpu" if dry_run else "cuda"
    if not dry_run and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run with --dry-run on CPU, or on the GPU machine")
    output.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    ctx = {"carried": carried, "work": work, "device": device, "shapes": DRY_SHAPES if dry_run else REAL_SHAPES,
           "dtype": torch.float32 if dry_run else torch.float16, "batches": (1, 2) if dry_run else (1, 16),
           "repeats": 3 if dry_run else 10, "new_tokens": 4 if dry_run else 64,
           # At tiny dims the positional embeddings are most of the encoder: half of it leaves no rank to spend.
           "fraction": 0.85 if dry_run else 0.5,
           # CPU dry run: dynamo's tracing without inductor's C++ compiler (CI machines may have none)
           "compile_backend": "aot_eager" if dry_run else "inductor"}
    report = {"dry_run": dry_run, "environment": environment(device), "steps": {}}
    try:
        for name, step in STEPS:
            tic = time.perf_counter()
            try:
                entry = {"result": step(ctx)}
            except Exception:  # recorded; the next step still runs
                entry = {"error": traceback.format_exc()}
            entry["seconds"] = round(time.perf_counter() - tic, 1)
            report["steps"][name] = entry
            print(f"[gpu_check] {name}: {'FAILED' if 'error' in entry else 'ok'} ({entry['seconds']:.0f} s)",
                  flush=True)
            (output / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = summary(report)
    (output / "gpu_check.txt").write_text(text + "\n")
    print(text)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepare", type=Path, metavar="DIR", help="write what the GPU machine needs into DIR")
    parser.add_argument("--carried", type=Path, metavar="DIR", help="what --prepare wrote (carried to the machine)")
    parser.add_argument("--output", type=Path, default=Path(os.environ.get("OUT", "gpu-check-output")))
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes (prepares its own DIR if none given)")
    args = parser.parse_args(argv)
    if args.prepare:
        prepare(args.prepare)
        return 0
    carried = args.carried
    if carried is None:
        if not args.dry_run:
            parser.error("give --carried DIR (from --prepare) on the GPU machine")
        carried = prepare(Path(tempfile.mkdtemp(prefix="gpu-carry-")) / "carry", num_clips=CLIPS)
    report = run(carried, args.output, args.dry_run)
    failed = [name for name, step in report["steps"].items() if "error" in step]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""int8 on top of low rank, measured as users get it: ONNX mixes (encoder and decoder each fp32 / q8 / fp16) and
PyTorch dynamic int8, lite vs original, end-to-end time and WER on real English (issue 27).

    python conversion/bench_int8.py --lite outputs/tiny70 --original /work/cache/ct2-import-v2/whisper-tiny.en \
        --work outputs/int8-tiny --json outputs/int8-tiny.json [--js] [--threads 1]

1. Both folders exported (`lite-whisper export-onnx --dtype fp32 q8 fp16`) into linked copies under --work.
2. q8 recipes for the encoder, from its fp32 file (`export.quantize_q8`): per tensor (what export-onnx wrote
   before), per channel with 8-bit and 7-bit weights, per channel with the low-rank factors kept fp32, optionally
   per channel with the projections whose quantization alone hurts most kept fp32 (`--keep-worst`), and the q8
   file export-onnx writes now (a LiteWhisper's factor pairs rebalanced first: `export.balanced_encoder`). Each
   encoder's output against the fp32 encoder's: cosine (flattened, per clip, averaged), on --fidelity-clips clips.
   With --op-profile, each fp32 and q8 encoder's time per operator type (onnxruntime's profiler).
3. Mixes decoded greedily by onnxruntime (`onnx.greedy.OnnxWhisper`, the loop transformers.js runs): WER on the
   whole set, split by the metadata's `source` (read speech vs the MFA test clips), tokens per clip; time on the
   first --timing-clips clips, each mix alternating batch by batch with the fp32 original (one pair of sessions
   open at a time), median of --repeats runs (`timing`).
4. PyTorch: fp32 and torch's dynamic int8 (torch.ao.quantization.quantize_dynamic on every nn.Linear; the lite
   model's factors as two nn.Linear each), lite and original, with generate(): WER and time the same way.
5. With --js: the transformers.js client (tests/js/transcribe.cjs, an npm install cached in the test cache) on the
   mixes it can load by dtype per module, in rounds alternating the mixes, median of the rounds' in-process times.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

from lite_whisper.compression import set_fast_path
from lite_whisper.data.assets import real_speech_set
from lite_whisper.data.audio import load_audio_dataset
from lite_whisper.interop.onnx.export import export_onnx, low_rank_matmuls, quantize_q8
from lite_whisper.interop.onnx.greedy import OnnxWhisper, session, time_onnx, transcribe_all
from lite_whisper.interop.onnx.layout import DECODER, ENCODER
from lite_whisper.loops import is_loop
from lite_whisper.modeling import LowRankLinear
from lite_whisper.timing import Transcriber, rotations, time_transcription
from lite_whisper.timing import transcribe
from lite_whisper.wer import word_error_rate
from lite_whisper.whisper import generate_kwargs

ROOT = Path(__file__).resolve().parents[1]
JS_SCRIPT = ROOT / "tests" / "js" / "transcribe.cjs"


# --- exports and recipes ---------------------------------------------------------------------------------------------


def exported(folder: Path, target: Path) -> Path:
    """A linked copy of `folder` with onnx/ (fp32, q8, fp16), exported once."""
    if (target / "onnx" / f"{DECODER}_fp16.onnx").is_file():
        return target
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for f in folder.iterdir():
        if f.is_file():
            (target / f.name).symlink_to(f.resolve())
    export_onnx(target, dtypes=["fp32", "q8", "fp16"], progress=False)
    return target


def projection_nodes(model) -> dict[str, str]:
    """{MatMul node: weight name} of every encoder projection with a stored weight (dense or factor)."""
    weights = {i.name for i in model.graph.initializer}
    return {n.name: n.input[1] for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights}


def encoder_recipes(folder: Path, work: Path, fidelity, keep_worst: int) -> dict[str, Path]:
    """q8 encoders of `folder` by recipe (see the module doc), built from its fp32 encoder."""
    source = folder / "onnx" / f"{ENCODER}.onnx"
    model = onnx.load(str(source))
    factors = low_rank_matmuls(model)
    work.mkdir(parents=True, exist_ok=True)
    recipes = {"q8 per-tensor (before)": dict(per_channel=False, reduce_range=False),
               "q8 per-channel 8-bit": dict(per_channel=True, reduce_range=False),
               "q8 per-channel 7-bit": dict(per_channel=True, reduce_range=True)}
    if factors:
        recipes["q8 per-channel 7-bit, factors fp32"] = dict(per_channel=True, keep_fp32=list(factors))
    out = {name: quantize_q8(source, work / f"encoder_{i}.onnx", **kw) for i, (name, kw) in enumerate(recipes.items())}
    if keep_worst:
        out[f"q8 per-channel, worst {keep_worst} fp32"] = quantize_q8(
            source, work / "encoder_worst.onnx", per_channel=True,
            keep_fp32=worst_projections(source, work, fidelity, keep_worst))
    return out


def worst_projections(source: Path, work: Path, fidelity, count: int) -> list[str]:
    """The `count` MatMul nodes whose quantization alone (per channel) lowers the encoder's cosine the most."""
    nodes = list(projection_nodes(onnx.load(str(source))))
    loss = {}
    for node in nodes:
        path = quantize_q8(source, work / "single.onnx", per_channel=True, keep_fp32=[n for n in nodes if n != node])
        loss[node] = 1 - fidelity(path)
    return sorted(loss, key=loss.get, reverse=True)[:count]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(a.shape[0], -1).astype(np.float64), b.reshape(b.shape[0], -1).astype(np.float64)
    return float(np.mean((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def fidelity_of(folder: Path, features: np.ndarray, threads: int):
    reference = session(folder / "onnx" / f"{ENCODER}.onnx", threads).run(None, {"input_features": features})[0]
    return lambda path: cosine(session(path, threads).run(None, {"input_features": features})[0], reference)


def op_profile(path: Path, features: np.ndarray, threads: int, runs: int = 3) -> dict:
    """Where an encoder file's time goes in onnxruntime: ms per run (median of `runs` after one warm-up) and each
    operator type's share of the kernels' time (onnxruntime's own profiler)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = threads, 1, 3
    options.enable_profiling = True
    options.profile_file_prefix = str(path.with_suffix(""))
    encoder = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    encoder.run(None, {"input_features": features})
    seconds = []
    for _ in range(runs):
        tic = time.perf_counter()
        encoder.run(None, {"input_features": features})
        seconds.append(time.perf_counter() - tic)
    trace = Path(encoder.end_profiling())
    kernel = {}
    for event in json.loads(trace.read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            kernel[op] = kernel.get(op, 0) + event["dur"]
    trace.unlink()
    total = sum(kernel.values())
    shares = {op: round(t / total, 4) for op, t in sorted(kernel.items(), key=lambda kv: -kv[1])}
    return {"ms_per_run": round(1000 * statistics.median(seconds), 1), "op_shares": shares}


# --- measurements ----------------------------------------------------------------------------------------------------


def wer_by_source(texts: list[str], samples, sources: dict[str, str], english: bool = True) -> dict:
    refs = [s.text for s in samples]
    out = {"all": word_error_rate(texts, refs, english=english),
           "loops": sum(is_loop(t, r) for t, r in zip(texts, refs))}
    groups = {"real-en-read": [i for i, s in enumerate(samples) if sources[s.id] != "mfa"],
              "real-en-mfa": [i for i, s in enumerate(samples) if sources[s.id] == "mfa"]}
    for name, idx in groups.items():
        out[name] = word_error_rate([texts[i] for i in idx], [refs[i] for i in idx], english=english)
    return out


def dynamic_int8(model: nn.Module) -> nn.Module:
    """torch's dynamic int8 on every nn.Linear; a LowRankLinear becomes Linear(in, r) -> Linear(r, out) first."""
    encoder = model.get_encoder()
    for module in list(encoder.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, LowRankLinear):
                first = nn.Linear(child.in_features, child.rank, bias=False)
                second = nn.Linear(child.rank, child.out_features, bias=child.bias is not None)
                with torch.no_grad():
                    first.weight.copy_(child.weight1.T)
                    second.weight.copy_(child.weight2.T)
                    if child.bias is not None:
                        second.bias.copy_(child.bias)
                setattr(module, name, nn.Sequential(first, second))
    set_fast_path(encoder, False)  # Whisper's layer forward calls the (quantized) modules
    return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


def pytorch_models(lite: Path, original: Path) -> dict[str, Transcriber]:
    out = {}
    for label, folder in (("original", original), ("lite", lite)):
        for int8 in (False, True):
            model = AutoModelForSpeechSeq2Seq.from_pretrained(folder, trust_remote_code=True,
                                                              dtype=torch.float32).eval()
            if int8:
                model = dynamic_int8(model)
            processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
            out[f"{label} pytorch {'int8' if int8 else 'fp32'}"] = Transcriber(model, processor,
                                                                              generate_kwargs(model, "en"))
    return out


def js_install() -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import CACHE  # the test cache holds the npm install of `make test-js`

    target = CACHE / "js"
    found = sorted(target.glob("transformers-js-*/node_modules/@huggingface/transformers/package.json"))
    if not found:
        raise FileNotFoundError(f"no transformers.js install under {target}: run `make test-js` once")
    return found[-1].parents[3]


def js_timing(mixes: dict[str, tuple[Path, dict]], arrays: list, repeats: int, threads: int, work: Path) -> dict:
    """transformers.js per mix: `repeats` rounds alternating the mixes (a Node process per mix and round: one
    warm-up call, then all clips, timed in process); median of the rounds."""
    install = js_install()
    clip_dir = work / "js-clips"
    clip_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, a in enumerate(arrays):
        paths.append(clip_dir / f"clip{i}.f32")
        a.astype("<f4").tofile(paths[-1])
    seconds = {label: [] for label in mixes}
    texts = {}
    env = {**os.environ, "TRANSCRIBE_REPEATS": "1", "TRANSCRIBE_THREADS": str(threads)}
    for order in rotations(list(mixes), repeats):
        for label in order:
            folder, dtype = mixes[label]
            proc = subprocess.run(["node", str(JS_SCRIPT), str(install), str(folder.parent), folder.name,
                                   json.dumps(dtype), *map(str, paths)], capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                raise RuntimeError(f"transformers.js failed on {label}: {proc.stderr[-2000:]}")
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            seconds[label] += out["seconds"]
            texts[label] = out["texts"]
    audio = sum(len(a) for a in arrays) / 16_000
    return {label: {"median_seconds": statistics.median(s), "rtf": statistics.median(s) / audio, "runs_seconds": s,
                    "texts": texts[label]} for label, s in seconds.items()}


def time_against_first(build, labels: list[str], arrays: list, args) -> dict:
    """Each variant timed against the first (the fp32 original), the two alternating batch by batch, one pair
    open at a time (six base sessions with onnxruntime's arenas do not fit in 24 GB). The first's entry is its
    run beside the first variant; each variant's speedups are against its own pair's baseline runs."""
    timing = {}
    for label in labels[1:]:
        pair = {labels[0]: build(labels[0]), label: build(label)}
        result = time_onnx(pair, arrays, batch_size=args.batch_size, repeats=args.repeats, threads=args.threads)
        timing.setdefault(labels[0], result[labels[0]])
        timing.update({k: v for k, v in result.items() if k not in pair and k not in timing})  # method, clips, ...
        timing[label] = result[label]
        del pair
    return timing


# --- the run ---------------------------------------------------------------------------------------------------------


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    dataset = Path(args.dataset) if args.dataset else real_speech_set("real-en")
    samples = load_audio_dataset(str(dataset))
    rows = [json.loads(line) for line in (dataset / "metadata.jsonl").read_text().splitlines()]
    sources = {row["id"]: row["source"] for row in rows}
    arrays = [s.array for s in samples]
    timed = arrays[:args.timing_clips]
    work = Path(args.work)
    folders = {"lite": exported(Path(args.lite), work / "lite" / Path(args.lite).name),
               "original": exported(Path(args.original), work / "original" / Path(args.original).name)}
    report = {"dataset": str(dataset), "clips": len(samples), "timing_clips": len(timed), "threads": args.threads,
              "load_average_start": os.getloadavg()}

    # encoder fidelity of each q8 recipe
    fe = OnnxWhisper(folders["lite"]).features
    features = fe(arrays[:args.fidelity_clips], sampling_rate=16_000, return_tensors="np").input_features
    recipes, fidelity = {}, {}
    for name, folder in folders.items():
        measure = fidelity_of(folder, features.astype(np.float32), args.threads)
        recipes[name] = encoder_recipes(folder, work / name / "recipes", measure, args.keep_worst if name == "lite"
                                        else 0)
        recipes[name]["q8 (export-onnx: rebalanced if low-rank, per-channel 7-bit)"] = \
            folder / "onnx" / f"{ENCODER}_quantized.onnx"
        recipes[name]["fp16"] = folder / "onnx" / f"{ENCODER}_fp16.onnx"
        fidelity[name] = {recipe: measure(path) for recipe, path in recipes[name].items()}
        print(f"{name} encoder cosine to fp32: " + ", ".join(f"{k} {v:.4f}" for k, v in fidelity[name].items()),
              flush=True)
    report["encoder_cosine"] = fidelity
    if args.op_profile:  # one window of the first clip, each encoder file alone
        report["op_profile"] = {}
        for name, folder in folders.items():
            files = {"fp32": folder / "onnx" / f"{ENCODER}.onnx", "q8": folder / "onnx" / f"{ENCODER}_quantized.onnx"}
            report["op_profile"][name] = {dtype: op_profile(path, features[:1].astype(np.float32), args.threads)
                                          for dtype, path in files.items()}
            for dtype, prof in report["op_profile"][name].items():
                top = ", ".join(f"{op} {share:.0%}" for op, share in list(prof["op_shares"].items())[:6])
                print(f"{name} {dtype} encoder: {prof['ms_per_run']} ms a window; {top}", flush=True)
    if args.fidelity_only:
        return report

    # mixes in onnxruntime
    mixes = {
        "original fp32": ("original", "fp32", "fp32"),
        "original q8": ("original", "q8", "q8"),
        "lite fp32": ("lite", "fp32", "fp32"),
        "lite q8": ("lite", "q8", "q8"),
        "lite fp32 + q8 decoder": ("lite", "fp32", "q8"),
        "lite q8 per-tensor encoder (before) + q8 decoder": ("lite", recipes["lite"]["q8 per-tensor (before)"], "q8"),
    }
    if args.fp16:
        mixes["original fp16"] = ("original", "fp16", "fp16")
        mixes["lite fp16"] = ("lite", "fp16", "fp16")
    build = lambda label: OnnxWhisper(folders[mixes[label][0]], encoder=mixes[label][1],  # noqa: E731
                                      decoder=mixes[label][2], threads=args.threads)
    onnx_wer = {}
    for label in mixes:  # one session pair at a time: onnxruntime's CPU arena grows ~5 GB a base pair on loops
        tic = time.perf_counter()
        model = build(label)
        onnx_wer[label] = wer_by_source(transcribe_all(model, arrays), samples, sources)
        del model
        print(f"onnx {label}: {onnx_wer[label]} ({time.perf_counter() - tic:.0f} s)", flush=True)
    report["onnx"] = {"mixes": {k: [str(x) for x in v] for k, v in mixes.items()}, "wer": onnx_wer,
                      "timing": time_against_first(build, list(mixes), timed, args)}
    print(json.dumps({k: v.get("median_seconds") for k, v in report["onnx"]["timing"].items()
                      if isinstance(v, dict)}), flush=True)

    # PyTorch fp32 and dynamic int8
    if args.torch:
        transcribers = pytorch_models(Path(args.lite), Path(args.original))
        torch_wer = {label: wer_by_source(transcribe(t.model, t.processor, arrays, t.generate_kwargs,
                                                     args.batch_size, progress=False)[0], samples, sources)
                     for label, t in transcribers.items()}
        report["pytorch"] = {"wer": torch_wer, "timing": time_transcription(
            transcribers, timed, batch_size=args.batch_size, repeats=args.repeats)}
        print(json.dumps(torch_wer), flush=True)

    # transformers.js
    if args.js:
        per_module = lambda e, d: {"encoder_model": e, "decoder_model_merged": d}  # noqa: E731
        js_mixes = {"original fp32": (folders["original"], per_module("fp32", "fp32")),
                    "original q8": (folders["original"], per_module("q8", "q8")),
                    "lite fp32": (folders["lite"], per_module("fp32", "fp32")),
                    "lite q8": (folders["lite"], per_module("q8", "q8")),
                    "lite fp32 + q8 decoder": (folders["lite"], per_module("fp32", "q8"))}
        report["transformers.js"] = js_timing(js_mixes, timed, args.repeats, args.threads, work)
    report["load_average_end"] = os.getloadavg()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lite", required=True, help="LiteWhisper folder")
    parser.add_argument("--original", required=True, help="the dense Whisper it was converted from")
    parser.add_argument("--work", required=True, help="folder for the exports and quantized files")
    parser.add_argument("--dataset", default=None, help="audiofolder with a `source` column (default: real-en)")
    parser.add_argument("--timing-clips", type=int, default=32)
    parser.add_argument("--fidelity-clips", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--keep-worst", type=int, default=0,
                        help="also a recipe keeping the N projections whose quantization alone hurts most in fp32")
    parser.add_argument("--fp16", action="store_true", help="also the fp16 files (slow on CPUs without fp16 math)")
    parser.add_argument("--torch", action="store_true", help="also PyTorch fp32 and dynamic int8")
    parser.add_argument("--js", action="store_true", help="also the transformers.js client")
    parser.add_argument("--fidelity-only", action="store_true", help="stop after the encoder cosines")
    parser.add_argument("--op-profile", action="store_true",
                        help="also onnxruntime's time per operator type of each fp32 and q8 encoder")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    report = run(args)
    text = json.dumps(report, indent=2, default=str)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

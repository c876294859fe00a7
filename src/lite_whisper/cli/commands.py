"""What each `lite-whisper` sub-command does: one `cmd_*` function per command, named in the table of
`lite_whisper/cli/__init__.py` and imported only once the flags are parsed and checked (this module imports torch,
transformers and every tool). The logic lives in the modules they call; each function prints its result."""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from dataclasses import asdict
from pathlib import Path

from lite_whisper import atomic
from lite_whisper.benchmarks import recovery as recovery_benchmark
from lite_whisper.benchmarks.compression_curve import (
    default_variants,
    format_table,
    header,
    parse_calibrations,
    real_speech_tests,
    resolve_datasets,
    run_benchmark,
    with_calibrations,
)
from lite_whisper.benchmarks.speed import bench_model, bench_shape, format_report
from lite_whisper.cli.flags import conversion_options
from lite_whisper.compression import (
    ConversionOptions,
    RecoveryOptions,
    convert,
    is_main_process,
    needs_launch,
    relaunch,
    validate_inputs,
)
from lite_whisper.data.assets import build_real_speech_sets, cache_dir, speech_set
from lite_whisper.data.degrade import synthesize_degraded
from lite_whisper.data.pool import build_pool
from lite_whisper.data.real_speech import SETS
from lite_whisper.data.synthesis import synthesize_dataset
from lite_whisper.evaluation.evaluate import evaluate_model, format_timing
from lite_whisper.interop.browser import make_server, problems, served_models
from lite_whisper.interop.ctranslate2 import import_ctranslate2
from lite_whisper.interop.liteasr import import_liteasr
from lite_whisper.interop.onnx.bench import bench_onnx_model, bench_onnx_shape, format_onnx_report
from lite_whisper.interop.onnx.export import export_onnx
from lite_whisper.interop.pypi_whisper import whisper_model
from lite_whisper.interop.web_packages import browser_packages
from lite_whisper.publish.card import save_eval_results
from lite_whisper.publish.hub import push_to_hub


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(data, indent=2) + "\n")
    print(f"results written to {path}")


def cmd_import_ct2(args: Namespace) -> int:
    print(f"wrote {import_ctranslate2(args.sources, args.output)}")
    return 0


def cmd_import_liteasr(args: Namespace) -> int:
    print(f"wrote {import_liteasr(args.source, args.base, args.output, overwrite=args.overwrite)}")
    return 0


def cmd_synthesize(args: Namespace) -> int:
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    make = synthesize_degraded if args.degrade else synthesize_dataset
    out = make(args.output, args.num, split=args.split, seed=args.seed, engines=engines, noise_snr_db=args.noise_snr)
    print(f"wrote {args.num} utterances ({args.split}, engines {', '.join(engines)}) to {out}")
    return 0


def cmd_real_speech(args: Namespace) -> int:
    for name, out, clips, minutes in build_real_speech_sets(args.sets, args.output):
        print(f"{name}: {clips} clips, {minutes:.1f} min ({SETS[name].language}) in {out}")
    return 0


def cmd_pool(args: Namespace) -> int:
    out = build_pool(args.output, cache_dir(), args.num_synthesized, args.seed, real=not args.no_real,
                     degraded_share=args.degraded_share)
    print((out / "README.md").read_text(encoding="utf-8"))
    print(f"wrote {out}")
    return 0


def cmd_eval(args: Namespace) -> int:
    result = evaluate_model(
        args.model, args.dataset, language=args.language, max_samples=args.max_samples,
        batch_size=args.batch_size, config=args.config, split=args.split, device=args.device, label=args.label,
        shuffle_buffer=args.shuffle_buffer, seed=args.seed, audio_column=args.audio_column,
        text_column=args.text_column,
        trust_remote_code=args.trust_remote_code, temperature_fallback=args.temperature_fallback,
        baseline=None if args.baseline == "none" else args.baseline,
        timing_repeats=args.timing_repeats, timing_clips=args.timing_clips,
    )
    print(f"model            {result['label']}")
    where = "/".join(str(x) for x in (result.get("dataset_config"), result["split"]) if x)
    print(f"dataset          {result['dataset_name']} {where} ({result['num_samples']} utterances, "
          f"{result['audio_seconds']:.1f} s of audio)" + (f", revision {result['revision']}" if result.get("revision")
                                                          else ""))
    print(f"WER              {result['wer']:.2f} %  ({result['normalizer']} normalizer, {result['decoding']})")
    if result["wer_without_overlong"] is not None:
        print(f"WER, no overlong {result['wer_without_overlong']:.2f} %  (without the {result['overlong_clips']} "
              "clips whose transcript is over twice the reference)")
    print(f"looping clips    {result['loops']} of {result['num_samples']} (hypothesis over twice the reference, "
          "or a phrase repeated 4+ times)")
    if result["normalizer"] != "whisper-english":
        print("  (pass --language en for English speech: WER then uses Whisper's English normalizer)")
    for line in format_timing(result.get("timing")):
        print(line)
    print(f"encoder params   {result['encoder_params']:,}")
    print(f"size on disk     {result['size_on_disk_bytes'] / 2**20:.1f} MiB")
    if args.output:
        write_json(args.output, result)
    message = None if args.no_save else save_eval_results(result, args.model, args.save_to)
    if message:
        print(message)
    return 0


def cmd_push(args: Namespace) -> int:
    results = []
    for path in args.results:
        if not path.is_file():
            raise FileNotFoundError(f"no results file {path}: write one with `lite-whisper eval ... --output`")
        results.append(json.loads(path.read_text()))
    out = push_to_hub(
        args.folder, args.repo_id, private=args.private, revision=args.revision, create_pr=args.create_pr,
        commit_message=args.commit_message, dry_run=args.dry_run, results=results, write_card=not args.keep_card,
        use_saved_results=not args.ignore_saved_results, base_model=args.base_model,
    )
    print(f"{args.folder} loads ({out.checks[0]})")
    if out.card:
        print(f"model card written: {out.card}")
    verb = "would upload" if out.dry_run else "uploaded"
    print(f"{verb} {len(out.files)} files ({sum(size for _, size in out.files) / 2**20:.1f} MiB) to {args.repo_id}:")
    for path, size in out.files:
        print(f"  {size:>12,}  {path}")
    if out.pr_url:
        print(f"pull request: {out.pr_url}")
    elif out.commit_url:
        print(f"commit: {out.commit_url}")
    return 0


def cmd_convert(args: Namespace) -> int:
    options = conversion_options(args)
    if needs_launch(args.num_processes):
        # Checked before any process starts (each process's `convert` checks again, in seconds).
        validate_inputs(args.base, args.output, args.calibration, options, dataset_config=args.calibration_config,
                        split=args.calibration_split, overwrite=args.overwrite)
        return relaunch(args.argv, args.num_processes, args.device)
    out = convert(args.base, args.output, args.calibration, options, dataset_config=args.calibration_config,
                  split=args.calibration_split, overwrite=args.overwrite)
    if not is_main_process():
        return 0
    report = json.loads((out / "conversion.json").read_text())
    print(f"wrote {out}: encoder {report['encoder_params_fraction']:.1%} of its parameters, "
          f"FLOP speedup {report['encoder_flops_speedup']:.2f}x, {report['seconds']:.0f} s")
    if args.push_to_hub:
        pushed = push_to_hub(out, args.push_to_hub, private=args.private)
        print(f"pushed {len(pushed.files)} files to {args.push_to_hub}: {pushed.commit_url or pushed.pr_url}")
    return 0


def bench_compression_variants(args: Namespace) -> list:
    """The variants to convert: their options are `convert`'s defaults except the flags given here."""
    options = ConversionOptions(num_samples=args.num_samples, batch_size=args.batch_size,
                                pack_seconds=args.pack_seconds)
    return default_variants(args.thresholds, args.targets, not args.no_one_shot, options,
                            one_shot_budgets=args.one_shot_budgets, heal_steps=args.heal_steps,
                            recovery=RecoveryOptions() if args.with_recovery else None)


def cmd_bench_compression(args: Namespace) -> int:
    base, test = args.base, args.test
    if base is None or test is None:
        base, test = str(base or whisper_model("base")), str(test or speech_set("test", 96, 2))
    # None: convert's own default (the pool), so the benchmark's variants are what `convert` makes
    calibration = resolve_datasets(args.calibration, args.num_samples) if args.calibration else None
    variants = bench_compression_variants(args)
    if args.calibrations:
        variants = with_calibrations(variants, parse_calibrations(args.calibrations, args.num_samples))
    extra = real_speech_tests(args.real_speech, base) if args.real_speech is not None else {}
    print(header(list(extra)))
    rows = run_benchmark(base, calibration, test, variants, language=args.language, max_test=args.max_test,
                         extra_tests=extra)
    print("\n" + format_table(rows))
    if args.json:
        write_json(args.json, rows)
    return 0


def cmd_bench_recovery(args: Namespace) -> int:
    options = ConversionOptions(target_params=args.target_params, target_speedup=args.target_speedup,
                                num_samples=args.num_samples, pack_seconds=args.pack_seconds)
    options.validate()
    base = args.base or str(whisper_model(args.model))
    original, cells = recovery_benchmark.run(base, options, stages=args.stages, draws=args.draws,
                                             pool_size=args.pool_size, fallback=args.fallback, keep=args.keep)
    print("\n" + recovery_benchmark.summary(original, cells))
    if args.json:
        write_json(args.json, {"original": original, "cells": [asdict(c) for c in cells]})
    return 0


def cmd_bench(args: Namespace) -> int:
    if args.onnx:
        result, report = bench_onnx(args)
    else:
        common = dict(device=args.device, dtype=args.dtype, batch_size=args.batch_size, warmup=args.warmup,
                      repeats=args.repeats, plain=args.plain)
        if args.shape:
            result = bench_shape(args.shape, args.fraction, layers=args.layers, **common)
        else:
            result = bench_model(args.model, args.baseline, dataset=args.dataset, rtf_samples=args.rtf_samples,
                                 rtf_batch_size=args.rtf_batch_size, rtf_repeats=args.rtf_repeats,
                                 profile_rows=args.profile,
                                 language=args.language,
                                 trust_remote_code=args.trust_remote_code, **common)
        report = format_report(result)
    if args.json == "-":
        print(json.dumps(result, indent=2))
        return 0
    print(report)
    if args.json:
        write_json(Path(args.json), result)
    return 0


def bench_onnx(args: Namespace) -> tuple[dict, str]:
    if args.device != "cpu" or args.dtype != "float32" or args.plain:
        raise ValueError("--onnx times onnxruntime on CPU in float32: drop --device, --dtype and --plain")
    common = dict(batch_size=args.batch_size, warmup=args.warmup, repeats=args.repeats, threads=args.threads)
    if args.shape:
        result = bench_onnx_shape(args.shape, args.fraction, layers=args.layers, **common)
    else:
        result = bench_onnx_model(args.model, args.baseline, **common)
    return result, format_onnx_report(result)


def cmd_export_onnx(args: Namespace) -> int:
    try:
        result = export_onnx(args.model_dir, args.output, args.dtype, check_audio=args.check_audio,
                             check_clips=args.check_clips, overwrite=args.overwrite)
    except ImportError as err:  # the onnx extra is not installed
        print(f"lite-whisper export-onnx: error: {err}", file=sys.stderr)
        return 2
    for check in result.checks:
        print(f"check (onnxruntime vs PyTorch, {check['clips']} clips): {check['summary']}")
    print(f"wrote {result.output} in {result.seconds:.0f} s:")
    for name, size in result.files:
        print(f"  {size:>12,}  {name}")
    return 0


def cmd_serve_web(args: Namespace) -> int:
    models = served_models(args.models)
    for problem in problems(models):
        print(f"lite-whisper serve-web: error: {problem}", file=sys.stderr)
    if not any(m.ok for m in models):
        raise ValueError("no model to serve: every folder given has a problem (above)")
    server = make_server(models, args.packages or browser_packages(), args.host, args.port)
    host, port = server.server_address[:2]
    names = ", ".join(m.name for m in models if m.ok)
    print(f"serving {names} at http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
    return 0


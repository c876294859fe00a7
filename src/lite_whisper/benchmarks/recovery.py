"""The recovery study as a command (`lite-whisper bench-recovery`): one budget, the method stage by stage, on
several calibration draws, judged on human speech.

Stages, each a `convert` with the options it names (cumulative):
- `fits`: one-shot PCA alone (LiteASR's factorization at the budget's ranks);
- `reconstruction`: + block-wise reconstruction (reconstruction.py);
- `default`: what `convert` does by default at this budget (`ConversionOptions.resolved`);
- `recovery`: `reconstruction`, then decoder-aware recovery (recovery.py) with its default options.
Each draw `d` calibrates on the pool of seed `d` (data/pool.py: its sentences, voices, degradations, order and the
held-out speakers all follow the seed). Every model is scored on the real English sets, read speech and MFA's
conversational clips apart: corpus WER, WER without the overlong clips (a looping clip costs more errors than it
has words), overlong and looping clips; greedy, and with `--fallback` also with Whisper's temperature fallback.
The summary gives, per stage and set, the mean and the worst over the draws.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from lite_whisper.benchmarks import DEFAULT_RECOVERY_STAGES, RECOVERY_STAGES
from lite_whisper.compression import ConversionOptions, ReconstructionOptions, RecoveryOptions
from lite_whisper.compression import convert
from lite_whisper.data.assets import calibration_pool, real_speech_set
from lite_whisper.evaluation.evaluate import evaluate_model

SETS = ("real-en-read", "real-en-mfa")
STAGES = RECOVERY_STAGES
METRICS = ("wer", "wer_without_overlong", "overlong_clips", "loops")


def stage_options(stage: str, options: ConversionOptions) -> ConversionOptions:
    """The options of one stage (see the module doc), from the budget's `options`."""
    if stage == "fits":
        return replace(options, reconstruction=None, recovery=None)
    if stage == "reconstruction":
        return replace(options, reconstruction=options.resolved().reconstruction or ReconstructionOptions(),
                       recovery=None)
    if stage == "default":
        return options
    if stage == "recovery":
        resolved = options.resolved()
        return replace(options, reconstruction=resolved.reconstruction or ReconstructionOptions(),
                       recovery=resolved.recovery or RecoveryOptions())
    raise ValueError(f"unknown stage {stage!r}: choose among {', '.join(STAGES)}")


@dataclass
class Cell:
    stage: str
    draw: int
    encoder_params_fraction: float
    conversion_seconds: float
    scores: dict  # {set: {decoding: {metric: value}}}
    quality_check: dict | None = None  # convert's own verdict (passed, agreement WER), kept even when it fails


def score(model_dir: Path, sets: dict[str, Path], fallback: bool) -> dict:
    """{set: {"greedy": metrics, ["fallback": metrics]}} for a model folder."""
    out = {}
    for name, folder in sets.items():
        runs = {"greedy": evaluate_model(model_dir, folder, language="en", progress=False, timing_repeats=0)}
        if fallback:
            runs["fallback"] = evaluate_model(model_dir, folder, language="en", progress=False,
                                              temperature_fallback=True, timing_repeats=0)  # WER only
        out[name] = {k: {m: r[m] for m in METRICS} for k, r in runs.items()}
    return out


def run(base: str | Path, options: ConversionOptions, *, stages=DEFAULT_RECOVERY_STAGES, draws=(0, 1, 2),
        pool_size: int = 512, fallback: bool = False, keep: Path | None = None, on_cell=print) -> tuple[dict, list[Cell]]:
    """The original's scores and one Cell per (draw, stage); `on_cell` sees each as it lands."""
    sets = {name: real_speech_set(name) for name in SETS}
    original = score(Path(base), sets, fallback)
    cells = []
    with tempfile.TemporaryDirectory(prefix="lite-whisper-bench-recovery-") as tmp:
        for draw in draws:
            pool = calibration_pool(pool_size, seed=draw)
            for stage in stages:
                out = (keep or Path(tmp)) / f"draw{draw}-{stage}"
                start = time.time()
                # allow_degraded: a benchmark scores every draw; the quality check's verdict is reported beside
                convert(base, out, str(pool), replace(stage_options(stage, options), seed=draw, allow_degraded=True),
                        overwrite=True)
                report = json.loads((out / "conversion.json").read_text())
                check = report.get("quality_check") or {}
                cell = Cell(stage, draw, report["encoder_params_fraction"], round(time.time() - start, 1),
                            score(out, sets, fallback),
                            {k: check.get(k) for k in ("passed", "agreement_wer", "looping_clips")})
                cells.append(cell)
                on_cell(format_cell(cell))
    return original, cells


def _metrics(m: dict) -> str:
    return (f"{m['wer']:7.2f} {m['wer_without_overlong'] if m['wer_without_overlong'] is not None else float('nan'):7.2f}"
            f" {m['overlong_clips']:3d} {m['loops']:3d}")


def format_cell(cell: Cell) -> str:
    parts = [f"{name} {decoding}: {_metrics(m)}" for name, runs in cell.scores.items() for decoding, m in runs.items()]
    check = cell.quality_check or {}
    verdict = {True: "check passed", False: "check FAILED"}.get(check.get("passed"), "no check")
    if check.get("agreement_wer") is not None:
        verdict += f" ({check['agreement_wer']:.1f}% agreement WER)"
    return (f"{cell.stage:<15} draw {cell.draw}  {cell.encoder_params_fraction:6.1%}  {cell.conversion_seconds:6.0f} s  "
            + "  |  ".join(parts) + f"  |  {verdict}")


def summary(original: dict, cells: list[Cell]) -> str:
    """Per stage, set and decoding: the mean and the worst over the draws (WER, WER without overlong clips,
    overlong and looping clips), under the original's own figures."""
    lines = ["stage            set           decoding   WER mean/worst   no-overlong mean/worst   overlong max  loops max"]
    rows = [("original", [original])] + [(stage, [c.scores for c in cells if c.stage == stage])
                                         for stage in dict.fromkeys(c.stage for c in cells)]
    for stage, scores in rows:
        for name in SETS:
            for decoding in scores[0][name]:
                ms = [s[name][decoding] for s in scores]
                wer = [m["wer"] for m in ms]
                clean = [m["wer_without_overlong"] for m in ms if m["wer_without_overlong"] is not None]
                lines.append(f"{stage:<16} {name:<13} {decoding:<10} {sum(wer) / len(wer):7.2f} {max(wer):7.2f}"
                             f"        {sum(clean) / len(clean):7.2f} {max(clean):7.2f}"
                             f"       {max(m['overlong_clips'] for m in ms):5d}  {max(m['loops'] for m in ms):8d}")
    return "\n".join(lines)

"""The accuracy/size Pareto curve: original vs threshold mode (LiteASR rule) vs budget mode, in one run.

Each variant is converted from the same base on the same calibration clips, then transcribed on the same
held-out set through the standard ASR pipeline; the table gives encoder size, WER and conversion time.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from lite_whisper.compression import ConversionOptions, RecoveryOptions
from lite_whisper.compression import DEFAULT_POOL_SIZE
from lite_whisper.compression import convert
from lite_whisper.data.assets import calibration_pool, real_speech_set, speech_set
from lite_whisper.data.real_speech import SETS
from lite_whisper.evaluation.evaluate import evaluate_model
from lite_whisper.whisper import is_english_only


def resolve_dataset(name: str, num_samples: int) -> str:
    """A dataset argument: `pool` (convert's default calibration pool), `synthesized` (synthesized clips of the
    calibration sentences), a real-speech set name, or as given."""
    if name == "pool":  # the pool `convert` reads without --calibration
        return str(calibration_pool(DEFAULT_POOL_SIZE, seed=ConversionOptions.seed))
    if name == "synthesized":
        return str(speech_set("calibration", num_samples, 1))
    if name in SETS and not Path(name).exists():
        return str(real_speech_set(name))
    return name


def resolve_datasets(items: list[str], num_samples: int) -> list[str]:
    """Each item a dataset or a comma list of them (mixed), resolved by `resolve_dataset`."""
    return [resolve_dataset(n.strip(), num_samples) for item in items for n in item.split(",") if n.strip()]


def parse_calibrations(items: list[str], num_samples: int) -> dict[str, list[str]]:
    """`NAME=DATA[,DATA...]` items -> {name: datasets}."""
    pairs = [item.split("=", 1) for item in items]
    if any(len(pair) != 2 or not pair[0] for pair in pairs):
        raise ValueError("--calibrations takes NAME=DATA[,DATA...] items, e.g. en=synthesized")
    return {name: resolve_datasets([data], num_samples) for name, data in pairs}


def real_speech_tests(names: list[str], base: str) -> dict[str, tuple[str, str]]:
    """{set name: (folder, language)} of the real-speech sets to evaluate on; without names: real-en, and the
    fr/es/it test sets for a multilingual base."""
    if not names:
        multilingual = not (Path(base) / "config.json").is_file() or not is_english_only(base)
        names = ["real-en"] + (["fr-test", "es-test", "it-test"] if multilingual else [])
    unknown = [n for n in names if n not in SETS]
    if unknown:
        raise ValueError(f"unknown real-speech set(s) {', '.join(unknown)}: choose among {', '.join(SETS)}")
    return {name: (str(real_speech_set(name)), SETS[name].language) for name in names}


@dataclass
class Variant:
    label: str
    options: ConversionOptions | None  # None: the original model
    calibration: str | list[str] | None = None  # None: the benchmark's calibration; several are mixed


def with_calibrations(variants: list[Variant], calibrations: dict[str, list[str]]) -> list[Variant]:
    """Each converted variant once per named calibration (e.g. {"en": [synth], "mix": [synth, fr, es, it]})."""
    out = []
    for variant in variants:
        if variant.options is None:
            out.append(variant)
            continue
        out += [Variant(f"{variant.label} [{name}]", variant.options, data) for name, data in calibrations.items()]
    return out


def default_variants(thresholds: list[str], targets: list[float], one_shot_thresholds: bool,
                     base_options: ConversionOptions, *, one_shot_budgets: bool = False,
                     heal_steps: list[int] = (), recovery: RecoveryOptions | None = None) -> list[Variant]:
    """The original; each threshold (LiteASR's one-shot rule and ours); each budget, as configured and
    optionally also one-shot, healed for N steps, and followed by decoder-aware recovery."""
    mode = "sequential" if base_options.sequential else "one-shot"
    variants = [Variant("original", None)]
    for thr in thresholds:
        if one_shot_thresholds:
            variants.append(Variant(f"threshold {thr} one-shot (LiteASR)",
                                    replace(base_options, threshold=thr, sequential=False)))
        variants.append(Variant(f"threshold {thr} {mode}", replace(base_options, threshold=thr)))
    for target in targets:
        variants.append(Variant(f"budget params {target:g} {mode}", replace(base_options, target_params=target)))
        if one_shot_budgets and base_options.sequential:
            variants.append(Variant(f"budget params {target:g} one-shot",
                                    replace(base_options, target_params=target, sequential=False)))
        for steps in heal_steps:  # healing: recovery with the encoder-output MSE as its only loss
            healing = RecoveryOptions(steps=steps, ce_weight=0.0, kl_weight=0.0, mse_weight=1.0)
            variants.append(Variant(f"budget params {target:g} {mode} heal {steps}",
                                    replace(base_options, target_params=target, recovery=healing)))
        if recovery is not None:
            # as convert's CLI does by default: one-shot fits, then recovery
            variants.append(Variant(f"budget params {target:g} one-shot + recovery",
                                    replace(base_options, target_params=target, recovery=recovery, sequential=False)))
    return variants


def run_benchmark(base: str, calibration: str, test: str, variants: list[Variant], *, language: str | None,
                  max_test: int | None, batch_size: int = 8, calibration_split: str | None = None,
                  keep: Path | None = None, extra_tests: dict[str, tuple[str, str]] | None = None) -> list[dict]:
    """Convert and evaluate every variant; returns one row per variant (also printed as it goes).

    `extra_tests`: more evaluation sets, name -> (dataset, language), e.g. the real-speech sets; each row then
    has `wer_sets` {name: WER} next to `wer` (the main `test` set)."""
    extra_tests = extra_tests or {}
    rows = []
    with tempfile.TemporaryDirectory(prefix="lite-whisper-bench-") as tmp:
        for i, variant in enumerate(variants):
            if variant.options is None:
                model_dir, seconds, fraction = Path(base), 0.0, 1.0
            else:
                model_dir = (keep or Path(tmp)) / f"variant-{i}"
                start = time.time()
                convert(base, model_dir, variant.calibration or calibration, variant.options,
                        split=calibration_split, overwrite=True)
                seconds = time.time() - start
                report = json.loads((model_dir / "conversion.json").read_text())
                fraction = report["encoder_params_fraction"]
            result = evaluate_model(model_dir, test, language=language, max_samples=max_test, batch_size=batch_size,
                                    timing_repeats=0)  # WER only: conversions time nothing here
            row = {"variant": variant.label, "encoder_params_fraction": fraction, "wer": result["wer"],
                   "loops": result["loops"], "rtf": result.get("rtf"), "conversion_seconds": round(seconds, 1)}
            if extra_tests:
                extra = {name: evaluate_model(model_dir, data, language=lang, max_samples=max_test,
                                              batch_size=batch_size, timing_repeats=0)
                         for name, (data, lang) in extra_tests.items()}
                row["wer_sets"] = {name: r["wer"] for name, r in extra.items()}
                row["loops_sets"] = {name: r["loops"] for name, r in extra.items()}
            # (no peak RSS: every variant runs in this one process, whose peak only grows; a fresh process
            # per conversion is what conversion/bench_calibration.py measures)
            rows.append(row)
            print(format_row(row), flush=True)
    return rows


HEADER = f"{'variant':<40} {'encoder params':>15} {'WER %':>8} {'loops':>6} {'convert s':>10}"


def header(sets: list[str] = ()) -> str:
    """The table header (greedy WER); with extra evaluation sets, a WER/loops column each after the main set's."""
    return HEADER + "".join(f" {name[:16]:>16}" for name in sets)


def format_row(row: dict) -> str:
    loops = row.get("loops_sets", {})
    extra = "".join(f" {f'{wer:.2f} / {loops.get(name, 0)}':>16}" for name, wer in row.get("wer_sets", {}).items())
    return (f"{row['variant']:<40} {row['encoder_params_fraction']:>14.1%} {row['wer']:>8.2f} "
            f"{row.get('loops', 0):>6} {row['conversion_seconds']:>10.1f}" + extra)


def format_table(rows: list[dict]) -> str:
    top = header(list(rows[0].get("wer_sets", {})) if rows else [])
    return "\n".join([top, "-" * len(top), *map(format_row, rows)])

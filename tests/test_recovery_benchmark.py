"""`lite-whisper bench-recovery`'s stages and summary (the conversions themselves are tested elsewhere)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lite_whisper.benchmarks.recovery import Cell, format_cell, stage_options, summary
from lite_whisper.cli import build_parser
from lite_whisper.compression.options import ConversionOptions, ReconstructionOptions, RecoveryOptions


def test_stages_add_one_step_each_and_default_is_convert_s():
    options = ConversionOptions(target_params=0.7)
    fits, blocks, default, recovered = (stage_options(s, options).resolved()
                                        for s in ("fits", "reconstruction", "default", "recovery"))
    assert fits.reconstruction is None and fits.recovery is None and fits.pipeline == "oneshot"
    assert blocks.reconstruction == ReconstructionOptions() and blocks.recovery is None
    assert default == options.resolved()
    assert recovered == replace(blocks, recovery=RecoveryOptions())
    tuned = ConversionOptions(target_params=0.7, recovery=RecoveryOptions(steps=250))
    assert stage_options("recovery", tuned).resolved().recovery.steps == 250  # the user's recovery options kept
    with pytest.raises(ValueError, match="unknown stage"):
        stage_options("heal", options)


def test_bench_recovery_runs_the_recovery_stage_only_when_asked():
    parser = build_parser("bench-recovery")
    assert parser.parse_args(["bench-recovery", "--target-params", "0.7"]).stages == ["fits", "reconstruction", "default"]
    assert parser.parse_args(["bench-recovery", "--target-params", "0.7", "--stages", "recovery"]).stages == ["recovery"]


def _m(wer, clean, overlong, loops):
    return {"wer": wer, "wer_without_overlong": clean, "overlong_clips": overlong, "loops": loops}


def test_summary_gives_the_mean_and_the_worst_draw_per_stage_and_set():
    original = {"real-en-read": {"greedy": _m(7.8, 7.8, 0, 0)}, "real-en-mfa": {"greedy": _m(25.0, 25.0, 0, 1)}}
    cells = [Cell("fits", d, 0.7, 1.0, {"real-en-read": {"greedy": _m(r, r, 0, 0)},
                                        "real-en-mfa": {"greedy": _m(m, c, o, o)}})
             for d, (r, m, c, o) in enumerate([(10.0, 30.0, 30.0, 0), (12.0, 90.0, 34.0, 2), (11.0, 33.0, 33.0, 1)])]
    lines = {tuple(line.split()[:3]): line.split()[3:] for line in summary(original, cells).splitlines()[1:]}
    assert lines[("fits", "real-en-read", "greedy")][:2] == ["11.00", "12.00"]
    assert lines[("fits", "real-en-mfa", "greedy")] == ["51.00", "90.00", "32.33", "34.00", "2", "2"]
    assert lines[("original", "real-en-mfa", "greedy")] == ["25.00", "25.00", "25.00", "25.00", "0", "1"]


def test_a_cell_shows_the_quality_checks_verdict():
    """bench-recovery scores every draw (allow_degraded) and says beside the scores whether convert's check passed."""
    scores = {"real-en-read": {"greedy": _m(12.2, 12.2, 0, 0)}}
    failed = Cell("default", 1, 0.7, 290.0, scores, {"passed": False, "agreement_wer": 52.34, "looping_clips": 1})
    assert format_cell(failed).endswith("check FAILED (52.3% agreement WER)")
    assert format_cell(Cell("fits", 0, 0.7, 1.0, scores)).endswith("no check")


def test_the_command_passes_its_calibration_flags_to_every_conversion(monkeypatch, tmp_path):
    """`--num-samples` and `--pack-seconds` reach the conversions' options; a bad value is refused before any
    pool is built or model loaded."""
    from lite_whisper import cli
    from lite_whisper.cli import commands
    from lite_whisper.benchmarks import recovery as recovery_benchmark

    seen = {}

    def run(base, options, **kwargs):
        seen["options"] = options
        return {}, []

    monkeypatch.setattr(recovery_benchmark, "run", run)
    monkeypatch.setattr(recovery_benchmark, "summary", lambda original, cells: "")
    args = ["bench-recovery", str(tmp_path), "--target-params", "0.7", "--num-samples", "64", "--pack-seconds", "15"]
    assert cli.main(args) == 0
    assert (seen["options"].num_samples, seen["options"].pack_seconds) == (64, 15.0)
    seen.clear()
    with pytest.raises(ValueError, match="--pack-seconds 40"):
        commands.cmd_bench_recovery(cli.build_parser().parse_args(args[:-1] + ["40"]))
    assert not seen

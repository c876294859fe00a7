"""The iterative pipeline (real tiny.en, synthesized speech): rounds meet their budgets, ranks only shrink, each
round's recovery starts from the previous round's factors with the original model as teacher, and the same
seed gives the same model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from lite_whisper.compression.conversion import convert
from lite_whisper.compression.lite_model import factors_of
from lite_whisper.compression.options import ConversionOptions, RecoveryOptions
from lite_whisper.compression.pipelines import iterative
from lite_whisper.compression.ranks import Candidate, Shape, allocate


# Small and fast: 12 clips (3 held out), 4 recovery steps in all (2 per round), scored every 2 steps.
RECOVERY = RecoveryOptions(steps=4, batch_size=2, warmup=1, eval_every=2, patience=2)
COMMON = dict(target_params=0.6, num_samples=12, batch_size=4, allocation_samples=8, probe_samples=2,
              heldout=0.25, augment_copies=0, recovery=RECOVERY, sequential=False,
              pack_seconds=0)  # one clip per window: 9 windows for 12 clips' statistics, not 2 or 3
SCHEDULE = "0.8,0.6"


def _sha(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def iterative_run(tiny_en_dir, tmp_path_factory, speech_calibration_32_dir):
    """One iterative conversion, watched: what each round's recovery was given, and the student's factors
    before and after it."""
    calls = {"teachers": [], "rounds": []}
    real_data, real_recover = iterative.distillation_data, iterative.recover_on

    def data(teacher, *args, **kwargs):
        calls["teachers"].append(teacher)
        return real_data(teacher, *args, **kwargs)

    def recover(student, train, heldout, options, **kwargs):
        before = factors_of(student)
        report = real_recover(student, train, heldout, options, **kwargs)
        calls["rounds"].append({"train": train, "heldout": heldout, "before": before, "after": factors_of(student)})
        return report

    out = tmp_path_factory.mktemp("iterative") / "lite"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(iterative, "distillation_data", data)
        mp.setattr(iterative, "recover_on", recover)
        convert(tiny_en_dir, out, str(speech_calibration_32_dir), ConversionOptions(schedule=SCHEDULE, **COMMON))
    return out, json.loads((out / "conversion.json").read_text()), calls


@pytest.fixture(scope="module")
def speech_calibration_32_dir():
    from conftest import CACHE
    from lite_whisper.data import assets

    return assets.speech_set("calibration", 32, seed=1, root=CACHE)


def test_round_budgets_and_steps():
    options = ConversionOptions(target_params=0.5, rounds=4, recovery=RecoveryOptions())
    assert options.pipeline == "iterative" and options.round_budgets() == [0.875, 0.75, 0.625, 0.5]
    assert iterative.split_steps(60, 4) == [15, 15, 15, 15] and iterative.split_steps(10, 4) == [2, 2, 3, 3]
    # (the schedule's and the rounds' refusals: test_option_checks.py)


def test_allocation_never_grows_a_capped_rank():
    shape = Shape(256, 256)  # low rank pays up to 112
    candidates = {k: Candidate(shape, lambda r: 0.0 if r is None else 1.0 / r) for k in "abcd"}
    caps = {"a": 16, "b": None, "c": 32, "d": 112}
    ranks = allocate(candidates, budget=4 * 256 * 256, multiple=16, caps=caps)  # room for everything dense
    assert ranks == {"a": 16, "b": None, "c": 32, "d": 112}
    tight = allocate(candidates, budget=(16 + 16 + 32 + 64) * 512, multiple=16, caps=caps)
    assert tight["a"] == 16 and tight["c"] <= 32 and tight["b"] is not None  # the budget still binds


@pytest.mark.long  # over a minute: `make test-long`
def test_each_round_meets_its_budget_and_ranks_only_shrink(iterative_run):
    _, report, _ = iterative_run
    rounds = report["rounds"]
    assert [r["target_params"] for r in rounds] == [0.8, 0.6]
    for r in rounds:
        assert r["encoder_params_fraction"] <= r["target_params"] + 1e-9
        assert r["encoder_params_fraction"] > r["target_params"] - 0.05  # the budget is used, not wasted
        assert {"heldout_loss", "token_error_rate_vs_original", "looping_clips", "seconds"} <= set(r)
    first, second = rounds[0]["low_rank_config"], rounds[1]["low_rank_config"]
    for layer_1, layer_2 in zip(first, second):
        for name, rank in layer_2.items():
            assert name not in layer_1 or rank <= layer_1[name]  # absent in round 1: it was dense
        assert set(layer_1) <= set(layer_2)  # a low-rank projection never becomes dense again
    assert report["low_rank_config"] == second and report["pipeline"] == "iterative"


@pytest.mark.long  # over a minute: `make test-long`
def test_recovery_starts_from_the_previous_round_with_the_original_as_teacher(iterative_run):
    _, _, calls = iterative_run
    assert len(calls["teachers"]) == 1  # teacher outputs and pseudo-labels computed once, from the original
    teacher = calls["teachers"][0]
    assert type(teacher).__name__ == "WhisperForConditionalGeneration"
    assert not any("weight1" in name for name, _ in teacher.named_parameters())
    first, second = calls["rounds"]
    assert second["train"] is first["train"] and second["heldout"] is first["heldout"]
    for key, (w1, w2, _) in second["before"].items():
        # Round 2 refactorizes the map round 1 ended with: that map, projected on its principal output directions
        # V (weight2 = V^T, orthonormal rows): W_2 = W_1 V V^T, its rank cut from round 1's (or from dense).
        start = w1 @ w2
        assert torch.allclose(w2 @ w2.T, torch.eye(w2.shape[0]), atol=1e-4)
        if key in first["after"]:
            ended = first["after"][key][0] @ first["after"][key][1]
            assert w2.shape[0] <= first["after"][key][1].shape[0]
            assert torch.allclose(start, ended @ (w2.T @ w2), atol=2e-3 * float(start.abs().max())), key


@pytest.mark.long  # over a minute: `make test-long`
def test_same_seed_same_model(iterative_run, tiny_en_dir, tmp_path, speech_calibration_32_dir):
    out, _, _ = iterative_run
    again = convert(tiny_en_dir, tmp_path / "again", str(speech_calibration_32_dir),
                    ConversionOptions(schedule=SCHEDULE, **COMMON))
    assert _sha(again) == _sha(out)

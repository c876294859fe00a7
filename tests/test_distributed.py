"""Calibration split across two CPU processes (accelerate launch, gloo) gives the one-process conversion.

The statistics are sums over windows, so two processes must fit the same factors up to floating-point
summation order. Low-rank factors are defined up to a rotation of their rank space (eigenvector signs), so
the factors are compared through what they compute: the product weight1 @ weight2 and the bias.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lite_whisper.convert import ConversionOptions, convert

SETTINGS = dict(target_params=0.6, num_samples=8, batch_size=4, allocation_samples=4, probe_samples=2)
# Max |difference| relative to the tensor's largest entry. Measured on tiny.en (10 windows): two processes vs
# one 5.8e-4 at most (median 3.8e-5), the same as one process with batch size 5 vs 4 (5.7e-4, 3.7e-5): float32
# products summed in another order, amplified by the eigen-decomposition and the sequential layers. Fitting
# on half the windows (a missing reduction) differs by 0.26 (median) to 1.1.
TOLERANCE = 1e-2


def load_weights(folder: Path) -> dict[str, torch.Tensor]:
    weights: dict[str, torch.Tensor] = {}
    for f in sorted(folder.glob("*.safetensors")):
        weights.update(load_file(f))
    return weights


def relative_differences(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per low-rank projection: max |diff| / max |entry| of weight1 @ weight2 and of the bias."""
    out = {}
    for key in a:
        if key.endswith(".weight1"):
            prefix = key[: -len("weight1")]
            prod_a, prod_b = (w[key].double() @ w[prefix + "weight2"].double() for w in (a, b))
            out[prefix + "product"] = float((prod_a - prod_b).abs().max() / prod_a.abs().max())
            bias_a, bias_b = a[prefix + "bias"].double(), b[prefix + "bias"].double()
            out[prefix + "bias"] = float((bias_a - bias_b).abs().max() / bias_a.abs().max())
    return out


@pytest.fixture(scope="module")
def one_process(tiny_en_dir, speech_calibration_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one") / "lite"
    return convert(tiny_en_dir, out, str(speech_calibration_dir), ConversionOptions(**SETTINGS))


@pytest.fixture(scope="module")
def two_processes(tiny_en_dir, speech_calibration_dir, tmp_path_factory) -> Path:
    """`lite-whisper convert --num-processes 2`: re-launched through `accelerate launch` (torchrun, gloo)."""
    out = tmp_path_factory.mktemp("two") / "lite"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SETTINGS.items()]
    cmd = [sys.executable, "-m", "lite_whisper.cli", "convert", str(tiny_en_dir), "--output", str(out),
           "--calibration", str(speech_calibration_dir), *flags, "--num-processes", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote ") == 1, done.stdout  # only the main process reports (and writes)
    return out


def test_two_processes_give_the_one_process_ranks_and_factors(one_process, two_processes):
    one = json.loads((one_process / "conversion.json").read_text())
    two = json.loads((two_processes / "conversion.json").read_text())
    assert one["num_processes"] == 1 and two["num_processes"] == 2
    assert two["calibration_windows_per_process"] == [4, 4]  # each process saw its own half of the windows
    assert len(two["peak_rss_mb_per_process"]) == 2 and two["num_samples"] == one["num_samples"] == 8
    assert two["low_rank_config"] == one["low_rank_config"]
    assert any(layer for layer in one["low_rank_config"])

    a, b = load_weights(one_process), load_weights(two_processes)
    assert a.keys() == b.keys()
    factor_keys = {k for k in a if k.split(".")[-1] in ("weight1", "weight2") or
                   (k.endswith(".bias") and k[: -len("bias")] + "weight1" in a)}
    for key in a.keys() - factor_keys:  # everything that is not a factor is the base model's, untouched
        assert torch.equal(a[key], b[key]), key
    diffs = relative_differences(a, b)
    assert diffs and max(diffs.values()) <= TOLERANCE, sorted(diffs.items(), key=lambda kv: -kv[1])[:3]


"""`conversion/gpu_check.py --dry-run`: the GPU check's every step on CPU at tiny shapes (`make test-gpu-check`,
minutes; not in the default run). What it proves: the script a GPU machine would run works end to end here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.gpucheck


def test_gpu_check_dry_run(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "conversion" / "gpu_check.py"), "--dry-run", "--output",
                           str(tmp_path)], capture_output=True, text=True, env=env, timeout=1800)
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    failed = {name: step["error"][-800:] for name, step in report["steps"].items() if "error" in step}
    assert proc.returncode == 0 and not failed, failed or proc.stderr[-2000:]
    steps = {name: step["result"] for name, step in report["steps"].items()}
    assert report["dry_run"] and report["environment"]["device"] == "cpu"

    for dtype in ("float16", "bfloat16"):  # converted with recovery, at the budget asked for
        convert = steps["convert"][dtype]
        assert convert["encoder_params_fraction"] <= 0.85 + 1e-6 and convert["encoder_flops_speedup"] > 1
        assert convert["recovery"], "recovery did not run"
    assert steps["two_processes"]["backend"] == "gloo" and steps["two_processes"]["encoder_params_fraction"] <= 0.86

    latency = steps["encoder_latency"]
    for key in ("batch1", "batch2", "batch1_compiled", "batch2_compiled"):
        assert latency[key]["dense_ms"] > 0 and latency[key]["lite_ms"] > 0
    for name in ("large-v3-turbo", "large-v3"):
        for batch in (1, 2):
            entry = steps["generate"][f"{name}_batch{batch}"]
            assert entry["new_tokens"] == 4 and entry["dense_rtfx"] > 0 and entry["lite_rtfx"] > 0
    for table in steps["profile"].values():
        assert "aten::" in table and "Self CPU" in table
    assert "== generate: ok" in (tmp_path / "gpu_check.txt").read_text()

"""`lite-whisper convert` on the real tiny.en and synthesized speech: budgets, modes, accuracy, atomicity."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lite_whisper.compression.budget import encoder_params
from lite_whisper.compression.conversion import convert
from lite_whisper.compression.options import ConversionOptions
from lite_whisper.evaluation.evaluate import evaluate_model
from lite_whisper.modeling import PROJECTIONS

FAST = dict(num_samples=8, batch_size=4, allocation_samples=4, probe_samples=2)
MAX_TEST = 12  # held-out clips per WER check (greedy decoding)


def wer(model_dir: Path, test_dir: Path, n: int = MAX_TEST) -> float:
    return evaluate_model(model_dir, test_dir, max_samples=n, progress=False)["wer"]


@pytest.fixture(scope="module")
def original_wer(tiny_en_dir, speech_test_dir):
    return wer(tiny_en_dir, speech_test_dir)


@pytest.fixture(scope="module")
def budget_model(tiny_en_dir, speech_calibration_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("budget") / "lite-tiny-70"
    return convert(tiny_en_dir, out, str(speech_calibration_dir), ConversionOptions(target_params=0.7, **FAST))


def test_budget_is_met(budget_model, tiny_en_dir):
    from transformers import AutoModelForSpeechSeq2Seq, WhisperConfig

    report = json.loads((budget_model / "conversion.json").read_text())
    assert abs(report["encoder_params_fraction"] - 0.7) < 0.01
    model = AutoModelForSpeechSeq2Seq.from_pretrained(budget_model, trust_remote_code=True)
    real = sum(p.numel() for p in model.get_encoder().parameters())
    assert real == report["encoder_params"]
    assert abs(real / encoder_params(WhisperConfig.from_pretrained(tiny_en_dir)) - 0.7) < 0.01
    ranks = [r for layer in report["low_rank_config"] for r in layer.values()]
    assert ranks and all(r % 16 == 0 for r in ranks)
    assert report["num_samples"] == FAST["num_samples"]
    # one gain per projection: the output error its probe's cut caused per unit of energy removed (0: not probed)
    assert [sorted(layer) for layer in report["sensitivity"]] == [sorted(PROJECTIONS)] * 4
    gains = [gain for layer in report["sensitivity"] for gain in layer.values()]
    assert all(gain >= 0 for gain in gains) and sum(gain > 0 for gain in gains) >= 12
    weights = sorted(tiny_en_dir.glob("*.safetensors"))
    assert report["base_model_sha256"] == hashlib.sha256(b"".join(f.read_bytes() for f in weights)).hexdigest()
    assert report["seconds"] > 0 and report["peak_rss_mb"] > 0


def test_budget_model_still_transcribes(budget_model, speech_test_dir, original_wer):
    lite_wer = wer(budget_model, speech_test_dir)
    assert lite_wer <= original_wer + 10.0, (lite_wer, original_wer)


@pytest.mark.parametrize("one_shot", [True, pytest.param(False, marks=pytest.mark.long)], ids=["one-shot", "sequential"])
def test_threshold_modes(one_shot, tiny_en_dir, speech_calibration_dir, tmp_path, speech_test_dir, original_wer):
    # Sequential fits are regressions: they need more windows than one-shot PCA (16 is the fixture's all).
    options = ConversionOptions(threshold="0.99:0.999", sequential=not one_shot, **{**FAST, "num_samples": 16})
    out = convert(tiny_en_dir, tmp_path / "lite", str(speech_calibration_dir), options)
    report = json.loads((out / "conversion.json").read_text())
    assert report["method"].startswith("lite-whisper " + ("one-shot" if one_shot else "sequential"))
    kept = [e for layer in report["energy_kept"] for e in layer.values()]
    assert min(kept) >= 0.99 - 1e-9  # every projection keeps at least its threshold
    assert report["encoder_params_fraction"] < 1.0
    assert wer(out, speech_test_dir) <= original_wer + 10.0


def test_full_energy_reproduces_original(tiny_en_dir, speech_calibration_dir, tmp_path):
    from transformers import AutoModelForSpeechSeq2Seq, WhisperForConditionalGeneration

    out = convert(tiny_en_dir, tmp_path / "lite", str(speech_calibration_dir),
                  ConversionOptions(threshold="1:1", **{**FAST, "num_samples": 2}))
    lite = AutoModelForSpeechSeq2Seq.from_pretrained(out, trust_remote_code=True).eval()
    base = WhisperForConditionalGeneration.from_pretrained(tiny_en_dir).eval()
    features = torch.randn(1, 80, 3000)
    tokens = torch.tensor([[50257, 50362]])
    with torch.no_grad():
        assert torch.equal(lite(features, decoder_input_ids=tokens).logits, base(features, decoder_input_ids=tokens).logits)


def test_refuses_a_model_that_is_not_whisper(budget_model, speech_calibration_dir, tmp_path):
    with pytest.raises(ValueError, match="not a Whisper checkpoint"):
        convert(budget_model, tmp_path / "again", str(speech_calibration_dir), ConversionOptions(target_params=0.5))
    assert not (tmp_path / "again").exists()
    with pytest.raises(ValueError, match="exactly one of"):
        ConversionOptions(threshold="0.9", target_params=0.5).validate()


def test_killed_conversion_leaves_no_output(tiny_en_dir, speech_calibration_dir, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "lite_whisper.cli", "convert", str(tiny_en_dir), "--output", str(out),
           "--calibration", str(speech_calibration_dir), "--threshold", "0.95:0.99", "--num-samples", "8"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "TQDM_MININTERVAL": "0"})
    seen = ""
    deadline = time.time() + 300
    while "compressing layers" not in seen and time.time() < deadline:
        seen += proc.stderr.read(64)
    assert "compressing layers" in seen, seen
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("killed")]


def test_convert_and_push_to_hub(tiny_en_dir, speech_calibration_dir, tmp_path):
    """`convert --push-to-hub`: the converted folder lands on a (local) Hub with its code and card."""
    from huggingface_hub import HfApi

    from hub_server import HubServer

    repo_id = "lite-tester/convert-and-push"
    with HubServer() as hub:
        env = {**os.environ, **hub.client_env(), "HF_HOME": str(tmp_path / "hf-home")}
        cmd = [sys.executable, "-m", "lite_whisper.cli", "convert", str(tiny_en_dir), "--output", str(tmp_path / "lite"),
               "--calibration", str(speech_calibration_dir), "--threshold", "0.9:0.95", "--num-samples", "2",
               "--push-to-hub", repo_id, "--allow-degraded"]  # 2 clips: a test of the plumbing, not of quality
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        files = set(HfApi(endpoint=hub.url, token=env["HF_TOKEN"]).list_repo_files(repo_id))
    assert {"model.safetensors", "config.json", "modeling_lite_whisper.py", "conversion.json", "README.md"} <= files
    assert repo_id in (tmp_path / "lite" / "README.md").read_text()

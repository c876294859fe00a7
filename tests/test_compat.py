"""Our folders under transformers 4.57 and 5.x side by side (`make test-compat`; not part of `make test`).

The folders are written here, by this (5.x) environment: a LiteWhisper, one converted from a base saved by
transformers 5.x (processor_config.json only, tokenizer special tokens as 5.x lists them), a LiteASR checkpoint
imported with `import-liteasr`, and a Whisper imported with `import-ct2`. tests/compat_payload.py then loads,
generates, transcribes (timestamps, long-form), and re-saves them in a fresh interpreter
of each version (LITE_WHISPER_COMPAT_PYTHON: the 4.57 one), without lite_whisper. Both versions must see the same:
equal transcripts and tokens, logits equal to rounding. The table goes to LITE_WHISPER_COMPAT_REPORT.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import modeling_support as support
from base_folder_support import transformers5_saved
from lite_folder_support import LITE_RANKS, lite_tiny_en
from liteasr_support import liteasr_folder
from lite_whisper.compression.lite_model import build_lite_whisper, save_lite_whisper, svd_factors
from lite_whisper.interop.liteasr import import_liteasr
from lite_whisper.wer import word_error_rate

pytestmark = pytest.mark.compat
PAYLOAD = Path(__file__).with_name("compat_payload.py")
LOGITS_ATOL = 1e-4


@pytest.fixture(scope="module")
def interpreters() -> dict[str, str]:
    other = os.environ.get("LITE_WHISPER_COMPAT_PYTHON")
    if not other:
        pytest.fail("LITE_WHISPER_COMPAT_PYTHON is not set: run `make test-compat`, which builds that interpreter")
    return {"current": sys.executable, "compat": other}


@pytest.fixture(scope="module")
def folders(tiny_en_dir, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compat")
    t5_base = transformers5_saved(tiny_en_dir, root / "whisper-tiny.en-t5")
    whisper = support.whisper(t5_base)
    ranks = [dict(LITE_RANKS) for _ in range(whisper.config.encoder_layers)]
    from_t5 = save_lite_whisper(build_lite_whisper(whisper, svd_factors(whisper, ranks)), root / "from-t5", t5_base)
    liteasr = import_liteasr(liteasr_folder(tiny_en_dir, root / "liteasr-src"), tiny_en_dir, root / "liteasr")
    return {"lite": lite_tiny_en(tiny_en_dir), "from_t5_base": from_t5, "liteasr_import": liteasr}


def _run(python: str, args: dict, tmp: Path, name: str) -> tuple[dict, dict]:
    (tmp / f"{name}.args.json").write_text(json.dumps(args))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp / f"home-{name}"),
           "HF_MODULES_CACHE": str(tmp / f"modules-{name}")}
    run = subprocess.run([python, str(PAYLOAD), str(tmp / f"{name}.args.json"), str(tmp / name)], env=env,
                         capture_output=True, text=True, timeout=900, cwd=tmp)
    assert run.returncode == 0, f"{name} ({python}):\n{run.stderr[-5000:]}"
    return json.loads((tmp / f"{name}.json").read_text()), load_file(tmp / f"{name}.safetensors")


def test_same_results_under_both_versions(interpreters, folders, tiny_en_dir, speech_test_dir, tmp_path):
    audio, reference_text = support.speech(speech_test_dir)[0]
    long_audio = support.long_audio(speech_test_dir, min_seconds=62)
    save_file({"audio": torch.from_numpy(audio), "long_audio": torch.from_numpy(long_audio),
               "decoder_ids": torch.tensor([[50257, 50362, 1649, 616]])}, tmp_path / "inputs.safetensors")
    runs = {}
    for version, python in interpreters.items():
        args = {"inputs": str(tmp_path / "inputs.safetensors"), "folders": {k: str(v) for k, v in folders.items()},
                "resaved": str(tmp_path / f"resaved-{version}"), "imported_whisper": str(tiny_en_dir)}
        runs[version] = _run(python, args, tmp_path, version)
    (current, current_logits), (compat, compat_logits) = runs["current"], runs["compat"]
    assert compat["transformers"].startswith("4.57.") and current["transformers"].startswith("5.")

    table = _side_by_side(current, compat, current_logits, compat_logits)
    report = os.environ.get("LITE_WHISPER_COMPAT_REPORT")
    if report:
        Path(report).write_text(table + "\n")
    print("\n" + table)

    for name in folders:
        for run in (current, compat):
            assert run[name]["classes"] == ["LiteWhisperConfig", "LiteWhisperForConditionalGeneration",
                                            "WhisperProcessor"], (name, run["transformers"])
            assert run[name]["feature_extractor_matches"], (name, run["transformers"])
        assert current[name]["generate"] == compat[name]["generate"], name
        assert current[name]["special_tokens"] == compat[name]["special_tokens"], name
        assert torch.allclose(current_logits[name], compat_logits[name], atol=LOGITS_ATOL, rtol=0), name
    for run in (current, compat):
        assert run["pipeline"]["pipeline"] == "LiteWhisperPipeline"
        assert word_error_rate([run["pipeline"]["short"]["text"]], [reference_text]) < 20
        assert run["pipeline"]["long_form"]["last_timestamp"][0] > 45  # the transcript reaches the end
        assert run["round_trip"] == run["pipeline"]["short"]
    assert current["pipeline"] == compat["pipeline"]
    assert current["import_ct2_tokenizer"] == compat["import_ct2_tokenizer"]
    assert current["import_ct2_tokenizer"]["decoded"] == " It's 5 o'clock."


def _side_by_side(current: dict, compat: dict, current_logits: dict, compat_logits: dict) -> str:
    def cell(run: dict, *path):
        value = run
        for key in path:
            value = value[key]
        return value

    rows = []
    for name in current_logits:
        diff = (current_logits[name] - compat_logits[name]).abs().max().item()
        rows.append((f"{name}: classes", *(", ".join(cell(r, name, "classes")[1:]) for r in (current, compat))))
        rows.append((f"{name}: generate", *(cell(r, name, "generate") for r in (current, compat))))
        rows.append((f"{name}: logits max abs diff", "reference", f"{diff:.2e}"))
    for key in ("short", "long_form"):
        rows.append((f"pipeline {key}", *(cell(r, "pipeline", key, "text")[:70] for r in (current, compat))))
        if key != "short":
            rows.append((f"pipeline {key}: last timestamp",
                         *(str(cell(r, "pipeline", key, "last_timestamp")) for r in (current, compat))))
    rows.append(("round trip (load, save, pipeline) = before",
                 *(str(r["round_trip"] == r["pipeline"]["short"]) for r in (current, compat))))
    rows.append(("import-ct2 tokenizer decode", *(r["import_ct2_tokenizer"]["decoded"] for r in (current, compat))))
    header = f"| check | transformers {current['transformers']} | transformers {compat['transformers']} |"
    lines = [header, "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(line.replace("\n", " ") for line in lines)

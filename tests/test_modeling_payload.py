"""The Hub payload: what save_lite_whisper writes, and loading it the way a Hub user does, in a fresh
interpreter where lite_whisper is not importable (trust_remote_code, a Hugging Face cache, HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import pipeline

from lite_whisper.compression import lite_model

from lite_whisper import modeling
from lite_whisper.compression.lite_model import AUTO_MAP, CUSTOM_PIPELINES, PROCESSOR_FILES, save_lite_whisper

import modeling_support as support

REPO_ID = "lite-whisper-tests/lite-whisper-tiny.en"


@pytest.fixture(scope="module")
def lite_dir(tiny_en_dir, tmp_path_factory):
    return support.saved_full_rank_lite(tiny_en_dir, tmp_path_factory.getbasetemp())


def test_saved_folder_is_self_contained(lite_dir, tiny_en_dir):
    for name in modeling.CODE_FILES:
        assert (lite_dir / name).read_bytes() == (Path(modeling.__file__).parent / name).read_bytes(), name
    copied = [name for name in PROCESSOR_FILES if (tiny_en_dir / name).is_file()]
    assert {"generation_config.json", "preprocessor_config.json", "tokenizer_config.json"} <= set(copied)
    for name in copied:
        assert (lite_dir / name).read_bytes() == (tiny_en_dir / name).read_bytes(), name
    config = json.loads((lite_dir / "config.json").read_text())
    assert config["model_type"] == "lite-whisper"
    assert config["auto_map"] == AUTO_MAP and config["custom_pipelines"] == CUSTOM_PIPELINES
    assert config["architectures"] == ["LiteWhisperForConditionalGeneration"]
    assert config["low_rank_config"] == support.full_rank_lite(tiny_en_dir).config.low_rank_config
    weights = load_file(lite_dir / "model.safetensors")
    assert weights["model.encoder.layers.3.fc2.weight1"].shape == (1536, 384)
    assert "model.encoder.layers.3.fc2.weight" not in weights


def test_save_is_atomic_and_refuses_to_clobber(tiny_en_dir, tmp_path, monkeypatch):
    model = support.full_rank_lite(tiny_en_dir)
    target = tmp_path / "out"

    def fail(*args, **kwargs):
        raise OSError("disk full")

    with monkeypatch.context() as patch:  # fail after the weights were written to the temporary folder
        patch.setattr(lite_model.shutil, "copyfile", fail)
        with pytest.raises(OSError, match="disk full"):
            save_lite_whisper(model, target, tiny_en_dir)
    assert list(tmp_path.iterdir()) == []

    target.mkdir()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_lite_whisper(model, target, tiny_en_dir)
    (target / "stale.txt").write_text("old")
    save_lite_whisper(model, target, tiny_en_dir, overwrite=True)
    assert not (target / "stale.txt").exists() and (target / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]

    with pytest.raises(FileNotFoundError, match="preprocessor_config.json"):
        save_lite_whisper(model, tmp_path / "other", tmp_path / "out" / "missing")
    with pytest.raises(TypeError, match="saves LiteWhisper models"):
        save_lite_whisper(support.whisper(tiny_en_dir), tmp_path / "other", tiny_en_dir)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


ISOLATED = r"""
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoModelForSpeechSeq2Seq, pipeline

inputs = load_file(ARGS["inputs"])
results, report = {}, {}

# Without trust_remote_code: a clear error, never a Whisper with random projections.
for name, load in [
    ("auto", lambda: AutoModelForSpeechSeq2Seq.from_pretrained(ARGS["lite_dir"], trust_remote_code=False)),
    ("pipeline", lambda: pipeline("automatic-speech-recognition", model=ARGS["repo_id"], trust_remote_code=False)),
]:
    try:
        load()
        report[name] = "loaded"
    except ValueError as error:
        report[name] = str(error)

config = AutoConfig.from_pretrained(ARGS["lite_dir"], trust_remote_code=True)
report["config"] = [type(config).__name__, config.low_rank_config]
with torch.no_grad():
    base = AutoModel.from_pretrained(ARGS["lite_dir"], trust_remote_code=True).eval()
    report["base_class"] = type(base).__name__
    results["base"] = base(inputs["features"], decoder_input_ids=inputs["decoder_ids"]).last_hidden_state
    model = AutoModelForSpeechSeq2Seq.from_pretrained(ARGS["lite_dir"], trust_remote_code=True).eval()
    results["logits"] = model(inputs["features"], decoder_input_ids=inputs["decoder_ids"]).logits
    results["tokens"] = model.generate(inputs["features"])
    es = AutoModel.from_pretrained(ARGS["es_dir"], trust_remote_code=True).eval()
    report["es_class"] = type(es).__name__
    results["es_logits"] = es(inputs["features"], decoder_input_ids=inputs["decoder_ids"]).logits

# The Hub user's path: a repo id, resolved in the local Hugging Face cache (HF_HUB_OFFLINE=1).
asr = pipeline("automatic-speech-recognition", model=ARGS["repo_id"], trust_remote_code=True)
report["pipeline_class"] = type(asr).__name__
report["transcript"] = asr(inputs["audio"].numpy(), return_timestamps=True, generate_kwargs={"num_beams": 1})

save_file({k: v.contiguous() for k, v in results.items()}, ARGS["out"] + ".safetensors")
open(ARGS["out"] + ".json", "w").write(json.dumps(report))
"""


def test_loads_without_lite_whisper_from_folder_and_hub_cache(lite_dir, tiny_en_dir, speech_test_dir, tmp_path):
    audio, _ = support.speech(speech_test_dir)[0]
    features = support.features(tiny_en_dir, audio)
    decoder_ids = torch.tensor([[50257, 50362, 1649, 616]])
    save_file(
        {"features": features, "decoder_ids": decoder_ids, "audio": torch.from_numpy(audio)}, tmp_path / "in.st"
    )
    es_reference = support.efficient_speech_folder(tiny_en_dir, tmp_path / "es")
    support.hf_cache_repo(tmp_path / "hub", REPO_ID, lite_dir)
    args = {
        "inputs": str(tmp_path / "in.st"),
        "lite_dir": str(lite_dir),
        "es_dir": str(tmp_path / "es"),
        "repo_id": REPO_ID,
        "out": str(tmp_path / "out"),
    }
    env = {
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "home"),
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
    }
    support.run_isolated(ISOLATED, args, cwd=tmp_path, env=env)
    report = json.loads((tmp_path / "out.json").read_text())
    results = load_file(tmp_path / "out.safetensors")

    for name in ("auto", "pipeline"):
        assert "trust_remote_code=True" in report[name], report[name]
    lite = support.full_rank_lite(tiny_en_dir)
    assert report["config"] == ["LiteWhisperConfig", lite.config.low_rank_config]
    assert report["base_class"] == "LiteWhisperModel" and report["es_class"] == "LiteWhisperForConditionalGeneration"
    with torch.no_grad():
        base = lite.model(features, decoder_input_ids=decoder_ids).last_hidden_state
    assert torch.equal(results["base"], base)
    assert torch.equal(results["logits"], support.logits(lite, features, decoder_ids))
    assert torch.equal(results["tokens"], lite.generate(features))
    assert torch.equal(results["es_logits"], support.logits(es_reference, features, decoder_ids))

    assert report["pipeline_class"] == "LiteWhisperPipeline"
    whisper_asr = pipeline("automatic-speech-recognition", model=str(tiny_en_dir))
    expected = whisper_asr(audio, return_timestamps=True, generate_kwargs={"num_beams": 1})
    assert report["transcript"] == json.loads(json.dumps(expected))  # tuples become lists in JSON
    assert expected["chunks"] and expected["text"].strip()

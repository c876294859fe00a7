"""What `convert` is given: a base Whisper saved by transformers 5.x converts, and every bad input (base model,
its processor files, calibration data, output path, options) fails in seconds, before the base's weights are
loaded or any calibration runs, and leaves no output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoProcessor, WhisperFeatureExtractor

from base_folder_support import altered_copy, edited_json, transformers5_saved
from lite_folder_support import lite_tiny_en
from lite_whisper import cli
from lite_whisper.compression import conversion as convert_module
from lite_whisper.compression.conversion import convert
from lite_whisper.compression.options import ConversionOptions
from lite_whisper.compression.pipelines import base as pipeline_base

# 2 clips at 0.9:0.95 is a degenerate model (agreement WER ~98% in the quality check): these tests are about the
# files and the inputs, so the check's verdict is overridden.
QUICK = dict(threshold="0.9:0.95", sequential=False, num_samples=2, batch_size=2, allow_degraded=True)


@pytest.fixture(scope="module")
def t5_base(tiny_en_dir, tmp_path_factory) -> Path:
    return transformers5_saved(tiny_en_dir, tmp_path_factory.mktemp("t5") / "whisper-tiny.en-t5")


def test_base_saved_by_transformers5_converts_and_loads_as_both_versions_need(t5_base, tiny_en_dir,
                                                                              speech_calibration_dir, tmp_path):
    assert not (t5_base / "preprocessor_config.json").exists()  # the layout under test
    assert "feature_extractor" in json.loads((t5_base / "processor_config.json").read_text())

    out = convert(t5_base, tmp_path / "lite", str(speech_calibration_dir), ConversionOptions(**QUICK))

    expected = WhisperFeatureExtractor.from_pretrained(t5_base).to_dict()
    assert WhisperFeatureExtractor.from_pretrained(out).to_dict() == expected
    processor = AutoProcessor.from_pretrained(out, trust_remote_code=True)
    reference = AutoProcessor.from_pretrained(t5_base)
    assert processor.feature_extractor.to_dict() == expected
    text = "<|startoftranscript|><|notimestamps|> It's 5 o'clock.<|endoftext|>"
    ids = reference.tokenizer(text).input_ids
    assert processor.tokenizer(text).input_ids == ids
    assert processor.tokenizer.all_special_tokens == reference.tokenizer.all_special_tokens
    assert processor.tokenizer.decode(ids, skip_special_tokens=True) == " It's 5 o'clock."
    # What transformers 4.57 needs besides (loading there: `make test-compat`): the stand-alone feature extractor
    # file, and the special tokens as a list it reads (it takes `extra_special_tokens` for a dict).
    assert json.loads((out / "preprocessor_config.json").read_text())["feature_size"] == expected["feature_size"]
    written = json.loads((out / "tokenizer_config.json").read_text())
    base_tokens = json.loads((t5_base / "tokenizer_config.json").read_text())["extra_special_tokens"]
    assert "extra_special_tokens" not in written and written["additional_special_tokens"] == base_tokens


# --- bad inputs: nothing expensive runs --------------------------------------------------------------


@pytest.fixture
def no_calibration(monkeypatch):
    """Records any call of what comes after validation (loading the base's weights, calibration)."""
    calls = []

    def spy(name):
        def called(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} ran although an input was bad")
        return called

    for module, name in ((convert_module, "load_base"), (convert_module, "calibration_clips"),
                         (convert_module, "windows"), (pipeline_base, "encoder_inputs"),
                         (pipeline_base, "calibrate_layer"), (pipeline_base, "make_chooser")):
        monkeypatch.setattr(module, name, spy(name))
    return calls


def _bad_bases(tiny: Path, base: Path, root: Path) -> dict[str, tuple[Path, str]]:
    """name -> (a damaged copy of tiny.en, what the error must say)."""
    weights = (tiny / "model.safetensors").read_bytes()[:4096]
    mel = {"feature_extractor": {**edited_json(tiny, "preprocessor_config.json"), "feature_size": 128}}
    return {
        "no tokenizer": (altered_copy(tiny, root / "a", drop=("tokenizer.json", "tokenizer_config.json")),
                         "lacks tokenizer_config.json, tokenizer.json"),
        "no generation config": (altered_copy(tiny, root / "b", drop=("generation_config.json",)),
                                 "lacks generation_config.json"),
        "no feature extractor": (altered_copy(tiny, root / "c", drop=("preprocessor_config.json",
                                                                     "processor_config.json")),
                                 "preprocessor_config.json \\(or processor_config.json"),
        "config of another size": (altered_copy(tiny, root / "d", files={"config.json": edited_json(
            tiny, "config.json", encoder_layers=5)}), "encoder_layers is 5 in config.json but 4 in the weights"),
        "truncated weights": (altered_copy(tiny, root / "e", files={"model.safetensors": weights}),
                              "not a readable safetensors file"),
        "mel bins of another model": (altered_copy(tiny, root / "f", drop=("preprocessor_config.json",),
                                                   files={"processor_config.json": mel}), "128 mel bins"),
        "tokenizer of another model": (altered_copy(tiny, root / "g", files={
            name: (base / name).read_bytes() for name in ("tokenizer.json", "tokenizer_config.json")}),
            "tokenizer .* does not match the model"),
        "a LiteWhisper": (lite_tiny_en(tiny), "already a LiteWhisper"),
    }


def test_bad_base_fails_before_calibration_and_leaves_nothing(tiny_en_dir, base_dir, speech_calibration_dir,
                                                              tmp_path, no_calibration):
    options = ConversionOptions(target_params=0.5)
    for name, (folder, message) in _bad_bases(tiny_en_dir, base_dir, tmp_path / "bases").items():
        out = tmp_path / "out" / name
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            convert(folder, out, str(speech_calibration_dir), options)
        assert no_calibration == [], name
        assert not (tmp_path / "out").exists(), name  # not even the parent folder


def test_bad_calibration_output_and_options_fail_before_calibration(tiny_en_dir, speech_calibration_dir,
                                                                    tmp_path, no_calibration):
    noise = tmp_path / "not-audio"
    noise.mkdir()
    (noise / "a.wav").write_bytes(b"RIFF but not really a wave file")
    (noise / "metadata.jsonl").write_text(json.dumps({"file_name": "a.wav", "text": "x"}) + "\n")
    calib, exists = str(speech_calibration_dir), tmp_path / "exists"
    exists.mkdir()
    cases = [
        (dict(calibration=str(tmp_path / "nowhere")), FileNotFoundError, "no such folder"),
        (dict(calibration=str(noise)), ValueError, "a.wav does not decode"),
        (dict(calibration=calib, output=exists), FileExistsError, "already exists"),
        (dict(calibration=calib, output=tiny_en_dir / "lite", overwrite=True), ValueError, "overlaps the base"),
        (dict(calibration=calib, options=ConversionOptions(target_params=0.5, threshold="0.9")), ValueError,
         "exactly one of"),
        (dict(calibration=calib, options=ConversionOptions(target_params=0.5, device="cuda:7")), ValueError,
         "--device cuda:7"),
    ]
    for given, error, message in cases:
        kwargs = {"options": ConversionOptions(target_params=0.5), "output": tmp_path / "out", **given}
        with pytest.raises(error, match=message):
            convert(tiny_en_dir, kwargs.pop("output"), kwargs.pop("calibration"), kwargs.pop("options"), **kwargs)
        assert no_calibration == [] and not (tmp_path / "out").exists(), given


def test_cli_reports_a_bad_base_in_one_line(tiny_en_dir, speech_calibration_dir, tmp_path, no_calibration, capsys):
    folder = altered_copy(tiny_en_dir, tmp_path / "base", drop=("tokenizer.json", "tokenizer_config.json"))
    code = cli.main(["convert", str(folder), "--output", str(tmp_path / "out"), "--calibration",
                     str(speech_calibration_dir), "--target-params", "0.5", "--num-processes", "2"])
    assert code == 2 and no_calibration == [] and not (tmp_path / "out").exists()
    error = capsys.readouterr().err
    assert error.startswith("lite-whisper convert: error:") and "lacks tokenizer_config.json" in error


CHECK_HUB_BASES = r"""
import sys
from huggingface_hub import HfApi
from lite_whisper.compression.validation import check_base_model

for repo, folder in zip(sys.argv[1::2], sys.argv[2::2]):
    HfApi().create_repo(repo)
    HfApi().upload_folder(repo_id=repo, folder_path=folder)
for repo in sys.argv[1::2]:
    try:
        print(repo, "processor files in", sorted(p.name for p in check_base_model(repo).processor_dir.iterdir()))
    except FileNotFoundError as err:
        print(repo, "error:", err)
"""


def test_a_hub_base_is_checked_from_its_small_files(tiny_en_dir, tmp_path):
    """A Hub id: config and processor files are fetched (not the weights) and checked; convert later saves the
    processor files from that snapshot (a repo id is not a folder to copy them from). In a fresh interpreter:
    huggingface_hub reads the endpoint when imported."""
    import os
    import subprocess
    import sys

    from hub_server import HubServer

    small = altered_copy(tiny_en_dir, tmp_path / "small", drop=("model.safetensors",))
    broken = altered_copy(tiny_en_dir, tmp_path / "broken", drop=("model.safetensors", "tokenizer_config.json"))
    with HubServer() as hub:
        env = {**os.environ, **hub.client_env(), "HF_HOME": str(tmp_path / "hf-home")}
        args = ["org/whisper-tiny.en", str(small), "org/broken", str(broken)]
        run = subprocess.run([sys.executable, "-c", CHECK_HUB_BASES, *args], env=env, capture_output=True,
                             text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    fetched, failed = run.stdout.strip().splitlines()[-2:]
    assert fetched.startswith("org/whisper-tiny.en processor files in")
    assert "'preprocessor_config.json'" in fetched and "'tokenizer.json'" in fetched
    assert "model.safetensors" not in fetched
    assert failed.startswith("org/broken error:") and "lacks tokenizer_config.json" in failed

"""Issue 20: bad calibration audio, --overwrite onto inputs, killed runs, Ctrl-C, broken folders, pipeline input,
unsafe loading. Each case: a clear error naming the file or the cause, a non-zero exit, nothing written or
deleted. (The quality check at the end of convert: test_quality.py.)"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lite_folder_support import lite_tiny_en
from lite_whisper.modeling.pipeline_lite_whisper import checked_audio, resample

from lite_whisper import atomic, cli

from lite_whisper.compression import conversion as convert_module
from lite_whisper.compression.conversion import calibration_clips
from lite_whisper.compression.options import ConversionOptions
from lite_whisper.data.clip_checks import BadClipError
from lite_whisper.evaluation import loading

SRC = Path(__file__).resolve().parents[1] / "src"
RATE = 16_000


def _speech(seconds: float = 2.0, rate: int = RATE, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.1 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    return (tone + 0.01 * np.random.default_rng(seed).standard_normal(t.size)).astype(np.float32)


def _audiofolder(root: Path, clips: dict[str, object]) -> Path:
    """An audiofolder of named clips: an array (16 kHz float WAV), (array, rate), or bytes (written as is)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, clip in clips.items():
        if isinstance(clip, bytes):
            (root / name).write_bytes(clip)
        else:
            array, rate = clip if isinstance(clip, tuple) else (clip, RATE)
            sf.write(root / name, array, rate, subtype="FLOAT")
        rows.append({"file_name": name, "text": "words"})
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def nothing_after_reading(monkeypatch):
    """Fails the test if a conversion gets past reading its calibration clips."""
    def spy(*args, **kwargs):
        raise AssertionError("calibration windows were built although a clip was bad")
    monkeypatch.setattr(convert_module, "windows", spy)


def _convert(capsys, base, output, calibration, *extra) -> tuple[int, str]:
    code = cli.main(["convert", str(base), "--output", str(output), "--calibration", str(calibration),
                     "--threshold", "0.99:0.999", "--one-shot", "--num-samples", "8", *map(str, extra)])
    return code, _messages(capsys.readouterr().err)


def _messages(err: str) -> str:
    """stderr without tqdm's progress bars (the data step's bar: clips read / wanted)."""
    lines = [part for line in err.splitlines() for part in line.split("\r")]
    return "\n".join(line for line in lines if line.strip() and not re.search(r"\d+%\|", line))


# --- 1. calibration audio, clip by clip -----------------------------------------------------------------------------


BAD_CLIPS = {  # fourth clip -> what the error says
    "nan": (np.full(RATE, np.nan, dtype=np.float32), "non-finite"),
    "empty": (np.zeros(0, dtype=np.float32), "is empty"),
    "silent": (np.zeros(2 * RATE, dtype=np.float32), "is silent"),
    "text": (b"this is not audio at all\n" * 40, "does not decode"),
}


@pytest.mark.parametrize("case", list(BAD_CLIPS))
def test_a_bad_fourth_clip_is_named_before_any_statistics(case, tiny_en_dir, tmp_path, capsys, nothing_after_reading):
    bad, says = BAD_CLIPS[case]
    calib = _audiofolder(tmp_path / "calib", {**{f"ok{i}.wav": _speech(seed=i) for i in range(3)}, "bad.wav": bad,
                                              **{f"ok{i}.wav": _speech(seed=i) for i in range(3, 6)}})
    code, err = _convert(capsys, tiny_en_dir, tmp_path / "lite", calib)
    assert code == 2
    assert "bad.wav" in err and says in err and "--skip-bad-clips" in err and "Traceback" not in err
    assert err.strip().splitlines() == [err.strip()]  # one line (read before the base's weights load)
    assert not (tmp_path / "lite").exists()


def test_skip_bad_clips_counts_them_and_too_few_are_refused(tmp_path):
    calib = _audiofolder(tmp_path / "calib", {"a.wav": _speech(), "nan.wav": BAD_CLIPS["nan"][0],
                                              "text.wav": BAD_CLIPS["text"][0], "b.wav": _speech(seed=1)})
    skip = dict(threshold="0.99:0.999", num_samples=8, skip_bad_clips=True)
    audio = calibration_clips(str(calib), ConversionOptions(**skip, sequential=False))  # needs 2
    arrays, report = audio.clips, audio.report
    assert len(arrays) == 2 and report["clips_read"] == 4 and report["clips_skipped"] == 2
    assert {Path(s["clip"].split()[-1]).name for s in report["skipped"]} == {"nan.wav", "text.wav"}
    with pytest.raises(BadClipError, match="too few usable calibration clips: 2 of 4"):
        calibration_clips(str(calib), ConversionOptions(**{**skip, "threshold": None}, target_params=0.5))  # 4 probes


def test_all_silent_calibration_is_refused_as_read(tiny_en_dir, tmp_path, capsys, nothing_after_reading):
    calib = _audiofolder(tmp_path / "calib", {f"s{i}.wav": np.zeros(2 * RATE, np.float32) for i in range(8)})
    code, err = _convert(capsys, tiny_en_dir, tmp_path / "lite", calib)
    assert code == 2 and "s0.wav is silent" in err
    code, err = _convert(capsys, tiny_en_dir, tmp_path / "lite", calib, "--skip-bad-clips")
    assert code == 2 and "too few usable calibration clips: 0 of 8" in err
    assert not (tmp_path / "lite").exists()


def test_long_clips_are_split_and_source_rates_recorded(tmp_path):
    long = _speech(75.0)
    calib = _audiofolder(tmp_path / "calib", {"long.wav": long, "8k.wav": (_speech(2.0, 8000), 8000)})
    audio = calibration_clips(str(calib), ConversionOptions(threshold="0.99:0.999", num_samples=8, sequential=False))
    arrays, report = audio.clips, audio.report
    assert [len(a) for a in arrays[:3]] == [30 * RATE, 30 * RATE, 15 * RATE]  # all 75 s used, not the first 30
    assert report["long_clips_split"] == 1 and report["pieces"] == 4
    assert report["source_sampling_rates"] == {"16000": 1, "8000": 1}
    assert abs(len(arrays[3]) - 2 * RATE) <= 1


# --- 2. nothing the user gave is deleted -------------------------------------------------------------------------


def test_overwrite_refuses_an_output_that_is_or_holds_the_calibration(tiny_en_dir, speech_calibration_dir, tmp_path,
                                                                       capsys, monkeypatch):
    calib = tmp_path / "calib"
    shutil.copytree(speech_calibration_dir, calib)
    before = _hashes(calib)
    for output in (calib, tmp_path, calib / "inner"):
        code, err = _convert(capsys, tiny_en_dir, output, calib, "--overwrite")
        assert code == 2 and "overlaps the calibration folder" in err, err
        assert _hashes(calib) == before
    monkeypatch.chdir(calib.parent)
    code, err = _convert(capsys, tiny_en_dir, ".", speech_calibration_dir, "--overwrite")
    assert code == 2 and "overlaps the current directory" in err
    assert _hashes(calib) == before


def test_every_writing_command_refuses_its_inputs_and_the_cwd(tiny_en_dir, tmp_path, capsys, monkeypatch):
    model = tmp_path / "model"
    shutil.copytree(tiny_en_dir, model)
    before = _hashes(model)
    assert cli.main(["export-onnx", str(model), "--output", str(model), "--overwrite"]) == 2
    assert "overlaps" in capsys.readouterr().err
    assert cli.main(["import-liteasr", str(lite_tiny_en(tiny_en_dir)), "--base", str(model), "--output", str(model),
                     "--overwrite"]) == 2
    assert "overlaps the base model folder" in capsys.readouterr().err
    assert cli.main(["import-ct2", str(model), "--output", str(model / "inside")]) == 2
    assert "overlaps the source folder" in capsys.readouterr().err
    monkeypatch.chdir(model)
    assert cli.main(["synthesize", "--output", ".", "--num", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["real-speech", "--set", "real-en-mini", "--output", "."]) == 2
    assert "already exists" in capsys.readouterr().err
    with pytest.raises(ValueError, match="overlaps the current directory"):
        atomic.check_target(model, overwrite=True)
    assert _hashes(model) == before


_KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from lite_whisper import atomic
    with atomic.staged_folder(sys.argv[1]) as staging:
        (staging / "model.safetensors").write_bytes(b"partial")
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_killed_run_leaves_staging_that_the_next_write_removes_saying_so(tmp_path, capsys):
    target = tmp_path / "out"
    run = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(target)], env={**os.environ, "PYTHONPATH": str(SRC)})
    assert run.returncode == -signal.SIGKILL
    [left] = list(tmp_path.glob(atomic.PREFIX + "*"))
    assert not target.exists()
    live = tmp_path / f"{atomic.PREFIX}other.live"  # a run still going (this process) is left alone
    live.mkdir()
    (live / atomic.MARKER).write_text(f"{__import__('socket').gethostname()} {os.getppid()}\n")
    with atomic.staged_folder(target) as staging:
        (staging / "x").write_text("x")
    assert not left.exists() and live.exists() and (target / "x").is_file()
    err = capsys.readouterr().err
    assert f"removed {left}" in err and "interrupted run" in err


def test_ctrl_c_ends_in_one_line_and_writes_nothing(tiny_en_dir, speech_calibration_dir, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(convert_module, "windows", interrupted)
    code, err = _convert(capsys, tiny_en_dir, tmp_path / "lite", speech_calibration_dir)
    assert code == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == "lite-whisper convert: interrupted: nothing written"
    assert list(tmp_path.iterdir()) == []


# --- 4. loading that goes wrong ------------------------------------------------------------------------------------


def _edited_copy(folder: Path, to: Path, **changes) -> Path:
    shutil.copytree(folder, to)
    config = json.loads((to / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    (to / "config.json").write_text(json.dumps(config))
    return to


def test_a_lite_folder_without_auto_map_or_its_files_is_named(tiny_en_dir, speech_test_dir, tmp_path, capsys):
    lite = lite_tiny_en(tiny_en_dir)
    no_map = _edited_copy(lite, tmp_path / "no-map", auto_map=None)
    assert cli.main(["eval", str(no_map), "--dataset", str(speech_test_dir), "--max-samples", "1", "--no-save"]) == 2
    assert "has no auto_map" in capsys.readouterr().err
    no_code = _edited_copy(lite, tmp_path / "no-code")
    (no_code / "modeling_lite_whisper.py").unlink()
    with pytest.raises(FileNotFoundError, match="modeling_lite_whisper.py"):
        loading.check_model_folder(no_code)


def test_config_sizes_that_disagree_with_the_weights_say_so(tiny_en_dir, speech_calibration_dir, tmp_path, capsys,
                                                            nothing_after_reading):
    wide = _edited_copy(tiny_en_dir, tmp_path / "wide", d_model=512)
    code, err = _convert(capsys, wide, tmp_path / "lite", speech_calibration_dir)
    assert code == 2 and "disagree" in err and "d_model is 512 in config.json but 384 in the weights" in err
    lite = _edited_copy(lite_tiny_en(tiny_en_dir), tmp_path / "lite-wide", d_model=512)
    with pytest.raises(ValueError, match="d_model is 512"):
        loading.check_model_folder(lite)


def test_plain_whisper_class_reports_the_projections_it_cannot_load(tiny_en_dir):
    """Measured (transformers 5.x): WhisperForConditionalGeneration loads a LiteWhisper folder (model_type
    "lite-whisper" only warns) and reports every factorized projection MISSING (newly initialized): not silent,
    but not refused either; our own loaders (eval, bench, push) never take this path."""
    from transformers import WhisperForConditionalGeneration

    lite = lite_tiny_en(tiny_en_dir)
    _, info = WhisperForConditionalGeneration.from_pretrained(lite, output_loading_info=True)
    assert any(k.endswith("self_attn.q_proj.weight") for k in info["missing_keys"])
    assert any(k.endswith("q_proj.weight1") for k in info["unexpected_keys"])


# --- 5. the pipeline's input ---------------------------------------------------------------------------------------


def test_pipeline_input_checks(tiny_en_dir, speech_test_dir):
    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=str(lite_tiny_en(tiny_en_dir)), trust_remote_code=True)
    audio, rate = sf.read(next(speech_test_dir.glob("*.wav")), dtype="float32")
    assert rate == RATE
    text = asr(audio)["text"]
    with pytest.raises(ValueError, match="empty"):
        asr(np.zeros(0, dtype=np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        asr(np.full(RATE, np.nan, dtype=np.float32))
    with pytest.warns(UserWarning, match="integer PCM"):
        assert asr((audio * 32767).astype(np.int16))["text"] == text
    at_8k = resample(audio, RATE, 8000)
    assert asr({"raw": at_8k, "sampling_rate": 8000})["text"] == text  # no torchaudio needed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert checked_audio(audio) is audio  # valid input passes untouched


# --- 6. safe by default ----------------------------------------------------------------------------------------------


def test_a_pickle_only_base_is_refused_unless_allowed(tiny_en_dir, speech_calibration_dir, tmp_path, capsys,
                                                      nothing_after_reading):
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_en_dir, pickled, ignore=shutil.ignore_patterns("*.safetensors*"))
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    code, err = _convert(capsys, pickled, tmp_path / "lite", speech_calibration_dir)
    assert code == 2 and "pytorch_model.bin" in err and "--allow-pickle" in err and "safetensors" in err


def test_eval_of_a_hub_id_with_code_needs_trust_remote_code(speech_test_dir, monkeypatch, capsys):
    monkeypatch.setattr(loading, "hub_config", lambda repo: {
        "model_type": "lite-whisper", "auto_map": {"AutoModelForSpeechSeq2Seq": "modeling_x.Model"}})
    assert cli.main(["eval", "someone/model", "--dataset", str(speech_test_dir), "--no-save"]) == 2
    err = capsys.readouterr().err
    assert "--trust-remote-code" in err and "modeling_x.py" in err
    assert loading.trust_for("someone/model", True) is True

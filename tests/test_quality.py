"""Issue 20: the quality check that ends every conversion (quality.py): a normal conversion passes with its
figures in conversion.json and on the card; a conversion calibrated on silence fails it and writes nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from lite_whisper import cli
from lite_whisper.compression import conversion as convert_module
from lite_whisper.compression.quality import MAX_AGREEMENT_WER, judge
from lite_whisper.publish.card import build_model_card

ARGS = ["--threshold", "0.99:0.999", "--one-shot", "--num-samples", "8"]


def test_a_normal_conversion_passes_and_its_figures_reach_conversion_json_and_the_card(
        tiny_en_dir, speech_calibration_dir, tmp_path):
    out = tmp_path / "lite"
    assert cli.main(["convert", str(tiny_en_dir), "--output", str(out), "--calibration",
                     str(speech_calibration_dir), *ARGS]) == 0
    report = json.loads((out / "conversion.json").read_text())
    quality = report["quality_check"]
    print("quality check (tiny.en, 0.99:0.999 one-shot, 8 clips):",
          {k: v for k, v in quality.items() if k not in ("original", "lite")})
    assert quality["passed"] and quality["clips"] == 4 and "not in the statistics" in quality["source"]
    assert quality["agreement_wer"] <= MAX_AGREEMENT_WER and quality["looping_clips"] == 0
    assert report["calibration_audio"]["source_sampling_rates"] == {"16000": 8}
    card = build_model_card(out, "tester/lite").content
    assert "## Quality check" in card and f"agreement WER (this model's transcripts against the original's) " \
        f"{quality['agreement_wer']:.1f}%" in card


def test_silent_calibration_fails_the_quality_check_and_writes_nothing(tiny_en_dir, tmp_path, monkeypatch, capsys):
    calib = tmp_path / "silence"
    calib.mkdir()
    for i in range(12):
        sf.write(calib / f"s{i}.wav", np.zeros(32000, dtype=np.float32), 16000)
    (calib / "metadata.jsonl").write_text("".join(json.dumps({"file_name": f"s{i}.wav"}) + "\n" for i in range(12)))
    # The clip checks refuse silence as it is read (test_bad_input.py); with them out of the way the quality
    # check is the last line: the original hears no speech, so nothing calibrated and nothing checked.
    monkeypatch.setattr(convert_module, "check_clips",
                        lambda samples, **kw: ([s.array for s in samples], [None] * len(samples),
                                                       {"clips_used": len(samples)}))
    out = tmp_path / "lite"
    assert cli.main(["convert", str(tiny_en_dir), "--output", str(out), "--calibration", str(calib), *ARGS]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "quality check failed" in err and "holds no speech" in err and "too little calibration audio" in err
    assert "--allow-degraded" in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["silence"]


@pytest.mark.parametrize("figures, passed, cause", [
    (dict(clips=4, agreement_wer=12.0, looping_clips=0, original_speech_clips=4), True, ""),
    (dict(clips=4, agreement_wer=80.0, looping_clips=0, original_speech_clips=4), False, "too aggressive"),
    (dict(clips=4, agreement_wer=20.0, looping_clips=1, original_speech_clips=4), False, "loop where"),
    (dict(clips=4, agreement_wer=None, looping_clips=0, original_speech_clips=0), False, "holds no speech"),
])
def test_the_bound(figures, passed, cause):
    ok, message = judge(figures, calibration_clips=64, params_fraction=0.5)
    assert ok == passed and cause in message


def test_a_model_whose_heldout_clips_loop_is_refused_and_told_why(tiny_en_dir, speech_calibration_dir):
    """A 'lite' model that cannot end a transcript (end of text suppressed) runs every held-out clip to the length
    limit: the check refuses it, naming the loops, and --allow-degraded keeps it with the failure recorded."""
    import copy

    import modeling_support as support
    from lite_whisper.compression.quality import QualityCheckFailed, quality_check

    original, processor = support.whisper(tiny_en_dir), support.processor(tiny_en_dir)
    looping = copy.deepcopy(original)
    looping.generation_config.suppress_tokens = [*original.generation_config.suppress_tokens,
                                                 original.generation_config.eos_token_id]
    looping.generation_config.max_length = 96  # the loop runs to this limit (448 by default): a faster test
    clips = [array for array, _ in support.speech(speech_calibration_dir)][:1]
    report = quality_check(original, looping, processor, clips, source="held-out clips", calibration_clips=64,
                           params_fraction=0.7, allow_degraded=True)
    assert not report["passed"] and report["looping_clips"] == 1 and report["kept_by"] == "--allow-degraded"
    assert "1 of 1 check clips loop where the original's transcripts do not" in report["failure"]
    with pytest.raises(QualityCheckFailed, match="loop where the original's transcripts do not.*--allow-degraded"):
        quality_check(original, looping, processor, clips, source="held-out clips", calibration_clips=64,
                      params_fraction=0.7)  # without --allow-degraded: refused

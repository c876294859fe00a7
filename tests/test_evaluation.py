"""`lite-whisper eval`: WER as an independent computation gives it, encoder size, on Whisper and LiteWhisper."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jiwer
import pytest
from safetensors import safe_open
from transformers import WhisperTokenizer

from lite_folder_support import LITE_RANKS, lite_tiny_en, measured
from lite_whisper.cli import main
from lite_whisper.evaluation.evaluate import evaluate_model


def _encoder_params_in_checkpoint(folder: Path) -> int:
    with safe_open(folder / "model.safetensors", "pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys() if k.startswith("model.encoder."))


def _independent_wer(folder: Path, predictions: list[str], references: list[str]) -> float:
    """jiwer on texts normalized by the model's own tokenizer (its normalizer.json), not by lite_whisper."""
    tokenizer = WhisperTokenizer.from_pretrained(folder)
    return 100 * jiwer.wer([tokenizer.normalize(t) for t in references], [tokenizer.normalize(t) for t in predictions])


def test_eval_wer_equals_an_independent_computation(tiny_en_dir: Path, speech_test_dir: Path, tmp_path: Path,
                                                    capsys):
    # Real audio with two references edited, so that the WER cannot be zero.
    rows = [json.loads(line) for line in (speech_test_dir / "metadata.jsonl").read_text().splitlines()][:4]
    rows[0]["text"] = "Surely " + rows[0]["text"]
    rows[1]["text"] = " ".join(["pineapple", *rows[1]["text"].split()[1:]])
    data = tmp_path / "speech"
    data.mkdir()
    for row in rows:
        (data / row["file_name"]).symlink_to(speech_test_dir / row["file_name"])
    (data / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))

    out = tmp_path / "results" / "original.json"  # through the command, as a user runs it
    assert main(["eval", str(tiny_en_dir), "--dataset", str(data), "--batch-size", "4", "--output", str(out),
                 "--no-save"]) == 0  # the cached model folder stays as it is (saving: test_eval_to_card.py)
    assert "WER" in capsys.readouterr().out
    result = json.loads(out.read_text())

    assert result["references"] == [row["text"] for row in rows]
    assert len(result["predictions"]) == 4
    expected = _independent_wer(tiny_en_dir, result["predictions"], result["references"])
    assert expected >= 2 * 100 / sum(len(r["text"].split()) for r in rows)  # at least the two edits count
    assert result["wer"] == pytest.approx(expected, abs=1e-9)
    assert result["encoder_params"] == result["encoder_params_original"] == _encoder_params_in_checkpoint(tiny_en_dir)
    assert result["size_on_disk_bytes"] == sum(p.stat().st_size for p in tiny_en_dir.iterdir() if p.is_file())
    assert result["weights_bytes"] == (tiny_en_dir / "model.safetensors").stat().st_size
    timing = result["timing"]  # warm, median of timed runs (test_timing.py); alone: no conversion.json here
    assert result["rtf"] == pytest.approx(timing["model"]["median_seconds"] / timing["audio_seconds"]) and result["rtf"] > 0
    assert len(timing["model"]["runs_seconds"]) == 3 and timing["clips"] == 4 and "baseline" not in timing
    assert timing["model"]["tokens_per_clip"] > 5
    assert not result["low_rank"] and result["normalizer"] == "whisper-english"


def test_eval_on_a_lite_folder(tiny_en_dir: Path, speech_test_dir: Path):
    lite = lite_tiny_en(tiny_en_dir)
    result = measured(lite, speech_test_dir, 3)

    assert result["low_rank"] and result["model_class"] == "LiteWhisperForConditionalGeneration"
    assert result["num_samples"] == 3
    assert result["wer"] == pytest.approx(_independent_wer(lite, result["predictions"], result["references"]))
    # Parameters: the checkpoint's tensors; dense again, exactly the original encoder's.
    assert result["encoder_params"] == _encoder_params_in_checkpoint(lite)
    assert result["encoder_params_original"] == _encoder_params_in_checkpoint(tiny_en_dir)
    d, ffn, layers = 384, 1536, 4  # tiny.en
    shapes = {"q_proj": (d, d), "k_proj": (d, d), "v_proj": (d, d), "out_proj": (d, d), "fc1": (d, ffn), "fc2": (ffn, d)}
    # Each factorized projection trades d_in*d_out for r*(d_in+d_out); k_proj gains a (zero) bias of d.
    saved = sum(layers * (i * o - r * (i + o)) for p, (i, o) in shapes.items() for r in [LITE_RANKS[p]]) - layers * d
    assert result["encoder_params_original"] - result["encoder_params"] == saved


def test_eval_refuses_a_dataset_without_transcripts(tiny_en_dir: Path, speech_test_dir: Path, tmp_path: Path):
    row = json.loads((speech_test_dir / "metadata.jsonl").read_text().splitlines()[0])
    (tmp_path / row["file_name"]).symlink_to(speech_test_dir / row["file_name"])
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": row["file_name"]}) + "\n")
    with pytest.raises(ValueError, match="transcript"):
        evaluate_model(tiny_en_dir, tmp_path, progress=False)

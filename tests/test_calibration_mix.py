"""Calibration on several datasets (languages) at once: equal shares, interleaving, and what conversion.json and
the model card say about it. Real tiny.en, synthesized speech and the real-speech set `real-en-mini`."""

from __future__ import annotations

import json

import pytest
import soundfile as sf
import numpy as np

from lite_whisper.data import assets
from lite_whisper.data.audio import load_audio_dataset
from lite_whisper.data.calibration_mix import (dataset_language, equal_shares, interleave, load_calibration_mix,
                                          split_sources)

from conftest import CACHE


def test_split_sources_takes_repeats_and_comma_lists():
    assert split_sources("a") == ["a"]
    assert split_sources(["a,b", "c"]) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="given twice"):
        split_sources(["a", "b,a"])
    with pytest.raises(ValueError, match="no calibration dataset"):
        split_sources([" , "])


def test_equal_shares_fill_the_gaps_of_small_datasets():
    assert equal_shares(12, [100, 100, 100]) == [4, 4, 4]
    assert equal_shares(10, [100, 100, 100]) == [4, 3, 3]
    assert equal_shares(12, [2, 100, 100]) == [2, 5, 5]  # the small one gives all it has, the others fill in
    assert equal_shares(50, [2, 3, 4]) == [2, 3, 4]  # fewer clips than asked: everything


def test_interleave_alternates_then_appends_the_surplus():
    assert interleave([[1, 2, 3], ["a"], ["x", "y"]]) == [1, "a", "x", 2, "y", 3]


def test_dataset_language_reads_the_metadata(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(1600, np.float32), 16_000)
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "a.wav", "text": "x", "language": "fr"}) + "\n")
    assert dataset_language(str(tmp_path)) == "fr"
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "a.wav", "text": "x"}) + "\n")
    assert dataset_language(str(tmp_path)) is None


@pytest.fixture(scope="module")
def two_sets(speech_calibration_dir) -> list[str]:
    return [str(speech_calibration_dir), str(assets.real_speech_set("real-en-mini", CACHE))]


def test_mix_takes_equal_interleaved_shares(two_sets):
    synthesized, real = two_sets
    samples, parts = load_calibration_mix(",".join(two_sets), 9)
    assert [(p.dataset, p.clips) for p in parts] == [(synthesized, 5), (real, 4)]
    assert parts[1].language == "en"  # real-speech sets declare their language
    first = {s.id: s for s in load_audio_dataset(synthesized, max_samples=5)}
    second = {s.id: s for s in load_audio_dataset(real, max_samples=4)}
    assert [s.id in first for s in samples] == [True, False] * 4 + [True]  # a, b, a, b, ..., then a's surplus
    assert {s.id for s in samples} == set(first) | set(second)


def test_conversion_records_the_calibration_mix(tiny_en_dir, two_sets, tmp_path):
    from lite_whisper.publish.card import build_model_card
    from lite_whisper.compression.conversion import convert
    from lite_whisper.compression.options import ConversionOptions

    options = ConversionOptions(threshold="0.99:0.999", sequential=False, num_samples=4, batch_size=4)
    out = convert(tiny_en_dir, tmp_path / "lite", two_sets, options)
    report = json.loads((out / "conversion.json").read_text())
    assert [(p["dataset"], p["clips"]) for p in report["calibration"]] == [(two_sets[0], 2), (two_sets[1], 2)]
    assert report["calibration_windows"] == 4 and "en" in report["calibration_languages"]
    card = str(build_model_card(out, "someone/lite-mix"))
    assert "Calibrated on" in card and "real-speech-real-en-mini, 2 clips" in card


def test_card_has_one_result_per_evaluation_set(tiny_en_dir, speech_test_dir, tmp_path):
    import yaml

    from lite_folder_support import linked_copy, lite_tiny_en, measured
    from lite_whisper.publish.card import write_model_card

    lite = lite_tiny_en(tiny_en_dir)
    folder = linked_copy(lite, tmp_path / "whisper-tiny.en-lite")
    (folder / "conversion.json").write_text(json.dumps(
        {"calibration": [{"dataset": "/x/speech-calibration", "language": "en", "clips": 8},
                         {"dataset": "/x/fr-calibration", "language": "fr", "clips": 8}]}))
    real = assets.real_speech_set("real-en-mini", CACHE)
    results = [dict(measured(lite, data, 2), model=str(folder), language="en") for data in (speech_test_dir, real)]
    text = write_model_card(folder, "someone/lite", results).read_text()
    (entry,) = yaml.safe_load(text.split("---\n")[1])["model-index"]
    names = [r["dataset"]["name"] for r in entry["results"]]
    assert names == [speech_test_dir.name, real.name] and all(r["dataset"]["config"] == "en" for r in entry["results"])
    assert "Calibrated on en, fr speech" in text
    assert f"| {real.name} | en | {results[1]['label']} |" in text  # the table has a row per set

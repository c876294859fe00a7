"""`lite-whisper eval` results reach the model card without extra typing: eval saves them into the model folder
(as Trainer writes eval_results.json), and `push` shows them, with the base folder's on the same data for
comparison, unless told to ignore them."""

from __future__ import annotations

import json

import pytest
import yaml

from lite_folder_support import linked_copy, lite_tiny_en
from lite_whisper import cli
from lite_whisper.publish import hub
from lite_whisper.publish.card import RESULTS_FILE

REPO_ID = "lite-tester/eval-to-card"


def _model_index_wer(card: str):
    meta = yaml.safe_load(card.split("---\n")[1])
    index = meta.get("model-index")
    return index[0]["results"][0]["metrics"][0]["value"] if index else None


def test_eval_results_reach_the_card_of_a_push(tiny_en_dir, speech_test_dir, tmp_path, monkeypatch, capsys):
    # The load check runs a fresh interpreter (tested in test_hub.py); here only the card is under test.
    monkeypatch.setattr(hub, "check_folder_loads", lambda folder: "not checked here")
    base = linked_copy(tiny_en_dir, tmp_path / "whisper-tiny.en")
    lite = linked_copy(lite_tiny_en(tiny_en_dir), tmp_path / "whisper-tiny.en-lite")
    (lite / "conversion.json").write_text(json.dumps({"base_model": str(base), "num_samples": 16}))

    for folder in (lite, base):
        assert cli.main(["eval", str(folder), "--dataset", str(speech_test_dir), "--max-samples", "2"]) == 0
    printed = capsys.readouterr().out
    wers = [float(line.split()[1]) for line in printed.splitlines() if line.startswith("WER ")]
    for folder, wer in zip((lite, base), wers):
        (saved,) = [r for r in json.loads((folder / RESULTS_FILE).read_text())["results"]
                    if r["dataset"] == str(speech_test_dir.resolve())]
        assert saved["wer"] == pytest.approx(wer, abs=0.005) and "predictions" not in saved

    assert cli.main(["push", str(lite), REPO_ID, "--dry-run"]) == 0
    card = (lite / "README.md").read_text()
    assert _model_index_wer(card) == pytest.approx(wers[0], abs=0.005)  # the lite model's own WER, in the YAML
    table = [line for line in card.splitlines() if line.startswith(("| whisper-tiny.en |", "| whisper-tiny.en-lite |"))]
    assert len(table) == 2  # and the comparison with the base in the results table
    assert RESULTS_FILE in capsys.readouterr().out  # uploaded with the card

    assert cli.main(["push", str(lite), REPO_ID, "--dry-run", "--ignore-saved-results"]) == 0
    card = (lite / "README.md").read_text()
    assert _model_index_wer(card) is None and "## Evaluation" not in card
    listed = capsys.readouterr().out
    assert RESULTS_FILE not in listed and (lite / RESULTS_FILE).is_file()  # kept, not published

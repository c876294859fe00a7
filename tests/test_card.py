"""Model card: Hub metadata with the measured WER (model-index), the real repo id, ranks, settings and plots."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest
import yaml
from huggingface_hub import ModelCard

from lite_folder_support import LITE_RANKS, linked_copy, lite_tiny_en, measured
from lite_whisper.publish.card import RANK_PLOT, WER_PLOT, write_model_card

REPO_ID = "lite-tester/whisper-tiny.en-lite"
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
CONVERSION = {  # as `lite-whisper convert` writes it (values made up: only their display is tested here)
    "base_model": "openai/whisper-tiny.en", "base_model_sha256": "0" * 64, "num_samples": 16,
    "options": {"target_params": 0.8, "rank_multiple": 16, "threshold": None}, "seconds": 12.5,
    "energy_kept": [{p: 0.9876 for p in PROJECTIONS} for _ in range(4)],
}


@pytest.fixture
def card_setup(tiny_en_dir: Path, speech_test_dir: Path, tmp_path: Path):
    lite = lite_tiny_en(tiny_en_dir)
    folder = linked_copy(lite, tmp_path / "whisper-tiny.en-lite")
    (folder / "conversion.json").write_text(json.dumps(CONVERSION))
    lite_result = dict(measured(lite, speech_test_dir, 3), model=str(folder))  # measured on these very weights
    original = measured(tiny_en_dir, speech_test_dir, 3)
    return folder, lite_result, original


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_card_metadata_holds_the_measured_wer_and_the_real_repo_id(card_setup):
    folder, lite_result, original = card_setup
    card_path = write_model_card(folder, REPO_ID, [lite_result, original])

    meta = _front_matter(card_path.read_text())  # parsed by plain YAML, independently of huggingface_hub
    assert meta["pipeline_tag"] == "automatic-speech-recognition" and meta["library_name"] == "transformers"
    assert meta["base_model"] == "openai/whisper-tiny.en" and meta["license"]
    assert {"lite-whisper", "whisper", "low-rank"} <= set(meta["tags"])
    (entry,) = meta["model-index"]
    (result,) = entry["results"]
    assert result["task"]["type"] == "automatic-speech-recognition"
    (metric,) = result["metrics"]
    assert metric["type"] == "wer" and metric["value"] == pytest.approx(lite_result["wer"], abs=0.005)

    card = ModelCard.load(card_path)  # and as the Hub's library reads it
    assert card.data.eval_results[0].metric_value == metric["value"]
    assert f'pipeline("automatic-speech-recognition", model="{REPO_ID}", trust_remote_code=True)' in card.text
    assert f'from_pretrained("{REPO_ID}", trust_remote_code=True)' in card.text


def test_card_shows_ranks_settings_and_plots(card_setup):
    folder, lite_result, original = card_setup
    text = write_model_card(folder, REPO_ID, [lite_result, original]).read_text()

    rank_rows = [line for line in text.splitlines() if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    assert len(rank_rows) == 4  # one per encoder layer of tiny.en
    assert all(f" {LITE_RANKS['fc1']} (98.8%) " in row and f" {LITE_RANKS['q_proj']} (98.8%) " in row
               for row in rank_rows)  # rank and energy kept
    assert "| num_samples | 16 |" in text and "| options.target_params | 0.8 |" in text
    assert "options.threshold" not in text  # unset options are not listed
    assert f"{lite_result['wer']:.2f}" in text and f"{original['wer']:.2f}" in text  # the comparison table
    for plot in (WER_PLOT, RANK_PLOT):
        assert f"]({plot})" in text
        image = matplotlib.image.imread(folder / plot)
        assert image.shape[0] > 200 and image.shape[1] > 300
    # The results are kept beside the card, so it can be rebuilt (for another repo id) from the folder alone.
    rebuilt = write_model_card(folder, "someone-else/renamed").read_text()
    assert 'model="someone-else/renamed"' in rebuilt and REPO_ID not in rebuilt
    assert _front_matter(rebuilt)["model-index"][0]["results"][0]["metrics"][0]["value"] == pytest.approx(
        lite_result["wer"], abs=0.005)


def test_card_shows_human_speech_beside_synthesized_with_its_loops_apart(card_setup):
    """As `make demo` publishes it: a row per model and set, the WER without overlong clips and the overlong and
    looping clips beside the corpus WER (a looping clip dominates it), and a model-index result per set."""
    folder, lite_result, original = card_setup
    human = dict(lite_result, dataset="real-en-mfa", dataset_name="real-en-mfa", wer=81.25,
                 wer_without_overlong=30.5, overlong_clips=1, loops=2)
    text = write_model_card(folder, REPO_ID, [lite_result, original, human]).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| real-en-mfa |"))
    assert "| 81.25 | 30.50 | 1 / 2 |" in row
    synthesized = next(line for line in text.splitlines() if f"| {lite_result['wer']:.2f} |" in line
                       and "real-en-mfa" not in line)
    assert f"| {lite_result['overlong_clips']} / {lite_result['loops']} |" in synthesized
    results = _front_matter(text)["model-index"][0]["results"]
    assert sorted(r["metrics"][0]["value"] for r in results) == sorted([round(lite_result["wer"], 2), 81.25])


def test_card_says_how_the_factors_were_made_and_what_the_pool_held(card_setup):
    folder, lite_result, original = card_setup
    pool = {"pool": "lite-whisper calibration pool", "seed": 3, "sources": {
        "codec2": {"clips": 19, "minutes": 3.7, "speakers": 13, "license": "LGPL-2.1 (codec2's test recordings)"},
        "synthesized": {"clips": 512, "minutes": 29.9, "speakers": 11, "license": "generated"}}}
    conversion = {**CONVERSION, "pipeline": "oneshot",
                  "reconstruction": {"train_windows": 96, "speech_seconds": 2700.0},
                  "calibration": [{"dataset": "/cache/pool-v1-512-seed3", "language": "en", "clips": 531,
                                   "pool": pool}]}
    (folder / "conversion.json").write_text(json.dumps(conversion))
    text = write_model_card(folder, REPO_ID, [lite_result, original]).read_text()
    assert "the lite-whisper calibration pool of seed 3" in text
    assert "codec2: 19 clips, 3.7 min, 13 speakers, LGPL-2.1" in text and "synthesized: 512 clips" in text
    assert ("Factors: one-shot PCA of each projection's outputs (LiteASR), then block-wise reconstruction of each "
            "layer against the original's (96 windows, 45 min of speech).") in text
    assert "decoder-aware recovery" not in text  # none ran


def test_a_card_with_onnx_carries_the_browser_page_code(tiny_en_dir, tmp_path):
    """The browser example is the page's own asr.js (served by `serve-web`, run by `make test-web`), verbatim, with
    the repo id and the transformers.js version the page is tested with; a folder without onnx/ has none."""
    import re

    from lite_whisper.publish.card import BROWSER_CODE, build_model_card
    from lite_whisper.interop.web_packages import TRANSFORMERS_JS

    folder = linked_copy(lite_tiny_en(tiny_en_dir), tmp_path / "whisper-tiny.en-lite")
    assert "```html" not in str(build_model_card(folder, REPO_ID))
    (folder / "onnx").mkdir()
    for name in ("encoder_model_quantized.onnx", "decoder_model_merged_quantized.onnx"):
        (folder / "onnx" / name).write_bytes(b"")  # the card looks at the file names only
    text = str(build_model_card(folder, REPO_ID))
    (html,) = re.findall(r"```html\n(.*?)```", text, flags=re.DOTALL)
    header, code = BROWSER_CODE.read_text().split("\nimport ", 1)  # the file's opening comment is the card's prose
    code = "import " + code.strip()
    assert all(line.startswith("//") for line in header.splitlines())
    assert code in html and code.count("export async function") == 3
    assert f'await loadModel("{REPO_ID}", {{ dtype: "q8" }})' in html
    assert f"https://cdn.jsdelivr.net/npm/@huggingface/transformers@{TRANSFORMERS_JS}" in html

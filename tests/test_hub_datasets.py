"""Calibration and evaluation on Hub datasets, against the local Hub server (tests/hub_server.py) serving parquet
dataset repos made of our synthesized clips: streamed (only the first shards read), shuffled with a seed, mixed by
recipe, pinned in conversion.json and the card, and every bad dataset refused in seconds with nothing written.
huggingface_hub reads HF_ENDPOINT when imported, so each client runs in a fresh interpreter."""

from __future__ import annotations

import json
import re
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub_dataset_support import audiofolder_rows, write_dataset, write_shards
from hub_server import HubServer
from lite_whisper.publish.card import build_model_card

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--threshold", "0.99:0.999", "--one-shot", "--batch-size", "8"]
# The mix module in a fresh interpreter, with a test recipe of two served datasets.
MIX = r"""
import json, sys
from lite_whisper.data.calibration_mix import load_calibration_mix
from lite_whisper.data.hub_datasets import DatasetSource
from lite_whisper.data.recipes import RECIPES, Recipe
RECIPES["two"] = Recipe("test", (DatasetSource("org/speech", "main", "train"), DatasetSource("org/speech-b", None, "train")))
calibration, num, buffer, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
samples, parts = load_calibration_mix(calibration, num, config=sys.argv[5] or None, shuffle_buffer=buffer, seed=seed)
print(json.dumps({"ids": [s.id for s in samples], "parts": [[p.dataset, p.config, p.split, p.clips] for p in parts]}))
"""


@pytest.fixture(scope="module")
def hub(speech_calibration_dir, speech_test_dir, tmp_path_factory):
    """org/speech: configs main (train: 32 clips in 8 shards of 4; test: 8) and other (test: the first 8 clips of
    speech_test_dir); org/speech-b (one config, train only); org/gated; org/no-audio."""
    root = tmp_path_factory.mktemp("datasets")
    calibration, test = audiofolder_rows(speech_calibration_dir, "cal-"), audiofolder_rows(speech_test_dir, "test-")
    write_dataset(root / "speech", {"main": {"train": calibration + test[8:24], "test": test[:8]},
                                    "other": {"test": test[:8]}})
    write_shards(audiofolder_rows(speech_test_dir, "b-")[8:16], root / "speech-b" / "data", "train", 4)
    write_shards(test[:4], root / "gated" / "data", "train", 4)
    text_only = [{"text": r["text"], "id": r["id"]} for r in test[:4]]
    write_shards(text_only, root / "no-audio" / "data", "train", 4, {"text": {"dtype": "string", "_type": "Value"}})
    with HubServer() as server:
        for name in ("speech", "speech-b", "no-audio"):
            server.add_folder(f"org/{name}", root / name)
        server.add_folder("org/gated", root / "gated", gated=True)
        server.shard_bytes = {p.relative_to(root / "speech").as_posix(): p.stat().st_size
                              for p in (root / "speech").rglob("*.parquet")}
        yield server


def _env(hub, tmp_path, **extra) -> dict:
    env = {**os.environ, **hub.client_env(), "HF_HOME": str(tmp_path / "hf-home"), "PYTHONPATH":
           os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    return {**env, **extra}


def _run(args: list[str], env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _convert(hub, tiny_en_dir, out: Path, tmp_path, *args) -> dict:
    run = _run(["-m", "lite_whisper.cli", "convert", str(tiny_en_dir), "--output", str(out), *QUICK, *args],
               _env(hub, tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    return {"report": json.loads((out / "conversion.json").read_text()), "stdout": run.stdout, "stderr": run.stderr}


@pytest.fixture(scope="module")
def ordered(hub, tiny_en_dir, tmp_path_factory):
    """A conversion on 8 clips of org/speech (config main, default split) in dataset order, and what it fetched."""
    tmp = tmp_path_factory.mktemp("ordered")
    before = len(hub.served)
    run = _convert(hub, tiny_en_dir, tmp / "lite", tmp, "--calibration", "org/speech", "--calibration-config",
                   "main", "--num-samples", "8", "--shuffle-buffer", "0")
    return {**run, "out": tmp / "lite", "served": hub.served[before:]}


def test_conversion_streams_only_the_first_shards_and_pins_what_it_read(hub, ordered):
    served = ordered["served"]
    shards = sorted({path for path, _ in served if path.endswith(".parquet")})
    train = sorted(p for p in hub.shard_bytes if p.startswith("main/train-"))
    # 8 calibration clips + the quality check's 4 clips read after them (threshold mode keeps a few aside) = the
    # first 3 shards of 4 clips; the stream may open the next one before it stops
    assert len(train) == 8 and shards == train[:len(shards)] and 3 <= len(shards) <= 4, shards
    # the shards read: once by the calibration, the first again by the validation's first clip, the first ones
    # again by the quality check's spare clips (a stream of their own), plus the parquet footers' range requests;
    # the other half of the split never
    read = sum(n for p, n in served if p.startswith("main/train-"))
    assert read <= 3 * sum(hub.shard_bytes[p] for p in shards)
    print("served:", served)
    [part] = ordered["report"]["calibration"]
    sha = hub.hub.repos[("dataset", "org/speech")].refs["main"]
    assert (part["dataset"], part["config"], part["split"], part["revision"]) == ("org/speech", "main", "train", sha)
    assert part["ids"] == [f"cal-utt-{i:05d}" for i in range(8)] and part["clips"] == 8
    assert "split 'train' (the first of train, validation, test" in ordered["stdout"] + ordered["stderr"]
    assert "calibration clips" in ordered["stderr"] and "8/8" in ordered["stderr"]  # the progress bar


@pytest.mark.long  # over a minute: `make test-long`
def test_a_seeded_shuffle_gives_the_same_other_clips_and_conversion_json_names_them(hub, ordered, tiny_en_dir,
                                                                                    tmp_path):
    shuffled = _convert(hub, tiny_en_dir, tmp_path / "lite", tmp_path, "--calibration", "org/speech",
                        "--calibration-config", "main", "--calibration-split", "train", "--num-samples", "8",
                        "--shuffle-buffer", "16", "--seed", "3")["report"]
    [part] = shuffled["calibration"]
    assert shuffled["options"]["shuffle_buffer"] == 16 and shuffled["options"]["seed"] == 3
    assert len(part["ids"]) == 8 and part["ids"] != ordered["report"]["calibration"][0]["ids"]
    again = _run(["-c", MIX, "org/speech", "8", "16", "3", "main"], _env(hub, tmp_path))
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout.splitlines()[-1])["ids"] == part["ids"]  # same seed, same clips


def test_a_recipe_of_two_datasets_mixes_both_in_equal_shares(hub, tmp_path):
    run = _run(["-c", MIX, "two", "6", "4", "42", ""], _env(hub, tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    mixed = json.loads(run.stdout.splitlines()[-1])
    assert mixed["parts"] == [["org/speech", "main", "train", 3], ["org/speech-b", None, "train", 3]]
    assert [i.startswith("b-") for i in mixed["ids"]] == [False, True] * 3  # interleaved


def test_bad_hub_datasets_fail_in_seconds_with_nothing_written(hub, tiny_en_dir, tmp_path):
    with socket.socket() as s:  # a port where no Hub answers
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    no_token = {k: v for k, v in _env(hub, tmp_path).items() if k != "HF_TOKEN"}
    cases = [
        (["--calibration", "org/no-audio"], {}, "has no audio column"),
        (["--calibration", "org/speech", "--calibration-config", "nope"], {}, "has no config 'nope': its configs are"),
        (["--calibration", "org/speech"], {}, "has several configs: choose one of main, other"),
        (["--calibration", "org/speech", "--calibration-config", "main", "--calibration-split", "dev"], {},
         "has no split 'dev': its splits are train, test"),
        (["--calibration", "org/nowhere"], {}, "is not on the Hub"),
        (["--calibration", "org/gated"], {"env": no_token}, "is gated: .* `hf auth login` or set HF_TOKEN"),
        (["--calibration", "org/speech", "--calibration-config", "main"], {"HF_HUB_OFFLINE": "1"},
         "HF_HUB_OFFLINE=1 is set"),
        (["--calibration", "org/speech", "--calibration-config", "main"], {"HF_ENDPOINT": closed},
         "cannot be reached"),
    ]
    for args, extra, message in cases:
        env = extra.pop("env", None) or _env(hub, tmp_path, **extra)
        out = tmp_path / "out"
        tic = time.perf_counter()
        run = _run(["-m", "lite_whisper.cli", "convert", str(tiny_en_dir), "--output", str(out), *QUICK, *args], env,
                   timeout=120)
        seconds = time.perf_counter() - tic
        errors = [line for line in run.stderr.splitlines() if line.startswith("lite-whisper convert: error:")]
        assert run.returncode == 2 and len(errors) == 1 and re.search(message, errors[0]), (args, run.stderr[-1500:])
        assert seconds < 60 and not out.exists(), (args, seconds)
    # the served dataset with a token works: it was the missing token
    run = _run(["-c", MIX, "org/gated", "2", "0", "0", ""], _env(hub, tmp_path))
    assert run.returncode == 0 and len(json.loads(run.stdout.splitlines()[-1])["ids"]) == 2, run.stderr[-1500:]


def test_eval_of_a_served_dataset_equals_eval_of_the_same_clips_as_an_audiofolder(hub, ordered, speech_test_dir,
                                                                                 tmp_path):
    lite = ordered["out"]
    served = _run(["-m", "lite_whisper.cli", "eval", str(lite), "--dataset", "org/speech", "--config", "other",
                   "--max-samples", "8", "--shuffle-buffer", "0", "--output", str(tmp_path / "hub.json")],
                  _env(hub, tmp_path))
    assert served.returncode == 0, served.stderr[-3000:]
    local = _run(["-m", "lite_whisper.cli", "eval", str(lite), "--dataset", str(speech_test_dir), "--max-samples",
                  "8", "--no-save", "--output", str(tmp_path / "local.json")], _env(hub, tmp_path))
    assert local.returncode == 0, local.stderr[-3000:]
    a, b = (json.loads((tmp_path / name).read_text()) for name in ("hub.json", "local.json"))
    assert a["num_samples"] == b["num_samples"] == 8 and a["predictions"] == b["predictions"]
    assert a["wer"] == pytest.approx(b["wer"])
    sha = hub.hub.repos[("dataset", "org/speech")].refs["main"]
    assert (a["dataset"], a["dataset_config"], a["split"], a["revision"]) == ("org/speech", "other", "test", sha)
    # eval saved the result into the folder; the card's model-index carries the dataset's coordinates
    [entry] = build_model_card(lite, "org/lite-tiny", results=json.loads((lite / "evaluation_results.json")
                                                                          .read_text())["results"]).data.eval_results
    assert (entry.dataset_type, entry.dataset_config, entry.dataset_split, entry.dataset_revision) == (
        "org/speech", "other", "test", sha)
    assert entry.dataset_args == {"num_samples": 8}

"""Publishing, end to end and offline: push to a local Hub server, then load by repo id through the ASR pipeline.

The clients run in fresh processes: huggingface_hub reads HF_ENDPOINT and HF_HUB_DISABLE_XET when imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import ModelCard

from lite_whisper.publish.hub import FolderDoesNotLoad, files_to_upload, push_to_hub
from hub_server import HubServer
from lite_folder_support import linked_copy, lite_tiny_en

REPO_ID = "lite-tester/whisper-tiny.en-lite"

# A Hub user's process: no lite_whisper, only transformers, the pushed repo (by id) and the local folder.
_TRANSCRIBE = r"""
import json, sys
sys.modules["lite_whisper"] = None
import numpy as np
from transformers import pipeline

repo_id, folder, audio = sys.argv[1:4]
arrays = list(np.load(audio).values())
out = {}
for name, model in (("hub", repo_id), ("local", folder)):
    asr = pipeline("automatic-speech-recognition", model=model, trust_remote_code=True)
    out[name] = [r["text"] for r in asr(arrays, batch_size=2)]
    out[name + "_class"] = type(asr.model).__name__
print(json.dumps(out))
"""


@pytest.fixture
def lite_dir(tiny_en_dir: Path, tmp_path: Path) -> Path:
    """A real LiteWhisper folder (cached), in a writable folder of links: push writes the card into it."""
    return linked_copy(lite_tiny_en(tiny_en_dir), tmp_path / "whisper-tiny.en-lite")


@pytest.fixture
def hub():
    with HubServer() as server:
        yield server


def _client_env(hub: HubServer, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, **hub.client_env(), "HF_HOME": str(tmp_path / "hf-home")}


def test_push_refuses_a_folder_that_does_not_load_before_any_upload(tiny_en_dir: Path, tmp_path: Path, hub):
    # One encoder layer more than the weights hold: transformers only warns and initializes it at random.
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_en_dir.iterdir():
        if f.name != "config.json":
            (broken / f.name).symlink_to(f)
    config = json.loads((tiny_en_dir / "config.json").read_text())
    config["encoder_layers"] += 1
    (broken / "config.json").write_text(json.dumps(config))

    with pytest.raises(FolderDoesNotLoad, match="missing_keys"):
        push_to_hub(broken, REPO_ID, token="hf_test", endpoint=hub.url)
    assert hub.requests == [] and hub.commits == []  # the server saw nothing: no repo, no upload, no commit
    assert not (broken / "README.md").exists()


def test_pushed_model_transcribes_exactly_as_the_local_folder(lite_dir: Path, speech_test_dir: Path, tmp_path: Path,
                                                               hub):
    from lite_whisper.data.audio import load_audio_dataset

    env = _client_env(hub, tmp_path)
    cli = [sys.executable, "-m", "lite_whisper.cli", "push", str(lite_dir), REPO_ID]

    dry = subprocess.run([*cli, "--dry-run"], env=env, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr
    assert hub.requests == []  # a dry run sends nothing
    listed = [line.split()[-1] for line in dry.stdout.splitlines() if line.startswith("  ")]
    assert listed == [path for path, _ in files_to_upload(lite_dir)]
    assert {"model.safetensors", "config.json", "modeling_lite_whisper.py", "README.md"} <= set(listed)

    push = subprocess.run([*cli, "--private", "--commit-message", "lite tiny.en"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert push.returncode == 0, push.stderr
    assert [c[:2] for c in hub.commits] == [(REPO_ID, "main"), (REPO_ID, "main")]  # repo creation, then the upload
    assert any(m == "PUT" and p.startswith("/lfs-objects/") for m, p in hub.requests)  # weights went through LFS
    with pytest.raises(urllib.error.HTTPError) as anonymous:  # --private: hidden from users without a token
        urllib.request.urlopen(f"{hub.url}/api/models/{REPO_ID}")
    assert anonymous.value.code == 401

    card = ModelCard.load(lite_dir / "README.md")
    assert f'model="{REPO_ID}"' in card.text and "trust_remote_code=True" in card.text

    samples = load_audio_dataset(speech_test_dir, max_samples=2)
    audio = tmp_path / "audio.npz"
    np.savez(audio, *[s.array for s in samples])
    run = subprocess.run([sys.executable, "-c", _TRANSCRIBE, REPO_ID, str(lite_dir), str(audio)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["hub_class"] == out["local_class"] == "LiteWhisperForConditionalGeneration"
    assert out["hub"] == out["local"]
    assert all(text.strip() for text in out["hub"])
    downloaded = {p.rsplit("/", 1)[-1] for m, p in hub.requests if m == "GET" and "/resolve/" in p}
    assert {"model.safetensors", "modeling_lite_whisper.py", "tokenizer.json"} <= downloaded

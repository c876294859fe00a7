"""Every code snippet of a generated model card runs as written, without a prompt: each in a fresh interpreter with
stdin closed (a notebook or a script cannot answer "Do you wish to run the custom code? [y/N]"), without
lite_whisper, against the card's repo on a local server that speaks the Hub API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from lite_folder_support import linked_copy, lite_tiny_en
from lite_whisper.publish.card import write_model_card
from lite_whisper.wer import word_error_rate
from hub_server import HubServer

REPO_ID = "lite-tester/card-snippets"
PROMPT = "Do you wish to run the custom code"
UPLOAD = r"""
import sys
from huggingface_hub import HfApi

api = HfApi()
api.create_repo(sys.argv[1])
api.upload_folder(repo_id=sys.argv[1], folder_path=sys.argv[2])
"""


def test_every_card_snippet_runs_with_stdin_closed(tiny_en_dir, speech_test_dir, tmp_path):
    folder = linked_copy(lite_tiny_en(tiny_en_dir), tmp_path / "whisper-tiny.en-lite")
    card = write_model_card(folder, REPO_ID).read_text()
    snippets = re.findall(r"```python\n(.*?)```", card, flags=re.DOTALL)
    assert len(snippets) >= 2
    row = json.loads((speech_test_dir / "metadata.jsonl").read_text().splitlines()[2])
    audio = speech_test_dir / row["file_name"]

    with HubServer() as hub:
        env = {**os.environ, **hub.client_env(), "HF_HOME": str(tmp_path / "hf-home")}
        upload = subprocess.run([sys.executable, "-c", UPLOAD, REPO_ID, str(folder)], env=env, capture_output=True,
                                text=True, timeout=300)  # huggingface_hub reads HF_HUB_DISABLE_XET on import
        assert upload.returncode == 0, upload.stderr[-3000:]
        for snippet in snippets:
            code = 'import sys\nsys.modules["lite_whisper"] = None\n' + snippet.replace("audio.wav", str(audio))
            run = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True,
                                 text=True, env=env, cwd=tmp_path, timeout=600)
            output = run.stdout + run.stderr
            assert run.returncode == 0, output[-3000:]
            assert PROMPT not in output, snippet
            if "audio.wav" in snippet:  # it prints the transcript of the file
                printed = run.stdout.strip().splitlines()[-1]
                assert word_error_rate([printed], [row["text"]]) < 20, (printed, row["text"])
    assert all("audio.wav" in snippet for snippet in snippets)  # each shows a transcription, not just loading


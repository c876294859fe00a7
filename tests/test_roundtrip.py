"""The fine-tune round trip: a LiteWhisper loaded through the Auto classes and saved again (what Seq2SeqTrainer and
push_to_hub do) keeps its code, its pipeline included, and transcribes as before. Both steps run in fresh
interpreters where lite_whisper cannot be imported: only the folders' own code is used, as for a Hub user."""

from __future__ import annotations

import json

import numpy as np

import modeling_support as support
from lite_folder_support import lite_tiny_en
from lite_whisper import modeling

LOAD_AND_SAVE = r"""
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

model = AutoModelForSpeechSeq2Seq.from_pretrained(ARGS["source"], trust_remote_code=True)
processor = AutoProcessor.from_pretrained(ARGS["source"], trust_remote_code=True)
model.save_pretrained(ARGS["target"])
processor.save_pretrained(ARGS["target"])
"""

TRANSCRIBE = r"""
import numpy as np
from transformers import pipeline

audio = np.load(ARGS["audio"])
out = {}
for name in ("source", "target"):
    asr = pipeline("automatic-speech-recognition", model=ARGS[name], trust_remote_code=True)
    out[name] = asr(audio, return_timestamps=True, generate_kwargs={"num_beams": 1})
    out[name + "_pipeline"] = type(asr).__name__
open(ARGS["out"], "w").write(json.dumps(out))
"""


def test_load_save_keeps_the_pipeline_and_the_transcript(tiny_en_dir, speech_test_dir, tmp_path):
    source, target = lite_tiny_en(tiny_en_dir), tmp_path / "fine-tuned"
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "home"), "HF_MODULES_CACHE": str(tmp_path / "modules")}
    support.run_isolated(LOAD_AND_SAVE, {"source": str(source), "target": str(target)}, cwd=tmp_path, env=env)

    # transformers copied the model's file and what it imports relatively; config.json still names the pipeline.
    for name in modeling.CODE_FILES:
        assert (target / name).read_bytes() == (source / name).read_bytes(), name
    config = json.loads((target / "config.json").read_text())
    assert config["custom_pipelines"] == json.loads((source / "config.json").read_text())["custom_pipelines"]

    audio, _ = support.speech(speech_test_dir)[0]
    np.save(tmp_path / "audio.npy", audio)
    args = {"source": str(source), "target": str(target), "audio": str(tmp_path / "audio.npy"),
            "out": str(tmp_path / "out.json")}
    env["HF_MODULES_CACHE"] = str(tmp_path / "modules-fresh")
    support.run_isolated(TRANSCRIBE, args, cwd=tmp_path, env=env)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["source_pipeline"] == out["target_pipeline"] == "LiteWhisperPipeline"
    assert out["target"] == out["source"]
    assert out["source"]["text"].strip() and out["source"]["chunks"][0]["timestamp"][1] > 1

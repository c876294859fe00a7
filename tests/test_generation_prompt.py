"""A clean first run: the decoder prompt said with the `task`/`language` flags transformers now expects (not the
deprecated forced_decoder_ids), no token limit beside the generation config's max_length, and a conversion and an
eval through the command line with transformers' notes about such calls turned into errors.

transformers logs each note once per process (`warning_once`), so the runs go in fresh interpreters."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lite_folder_support import linked_copy
from lite_whisper.processor_files import copy_processor_files
from lite_whisper.wer import word_error_rate
from lite_whisper.whisper import prompt_flags

# What transformers (4.57 and 5.x) logs about a generate() call that passes options the old way.
NOTES = [
    "Using custom `forced_decoder_ids`",  # the prompt as forced_decoder_ids (openai's generation configs)
    "seem to have been set",  # max_new_tokens beside the generation config's max_length (5.x)
    "Passing `generation_config` together with generation-related",  # 5.25, from inside Whisper's own generate()
    "will default to language detection followed by transcription",  # forced [[1, None], ...] on a multilingual model
]
MULTILINGUAL = {"is_multilingual": True, "no_timestamps_token_id": 50363, "lang_to_id": {"<|en|>": 50259, "<|fr|>": 50265},
                "task_to_id": {"translate": 50358, "transcribe": 50359}}


@pytest.mark.parametrize("forced, flags", [
    ([[1, None], [2, 50359]], {"task": "transcribe"}),  # openai's multilingual checkpoints
    ([[1, 50265], [2, 50358], [3, 50363]], {"task": "translate", "language": "fr"}),
    ([[1, 50363]], {}),  # English-only: <|notimestamps|>, which generate() adds itself
])
def test_forced_prompts_become_flags(forced, flags):
    english_only = forced == [[1, 50363]]
    config = {"no_timestamps_token_id": 50363} if english_only else dict(MULTILINGUAL)
    modern = prompt_flags({**config, "forced_decoder_ids": forced, "max_length": 448})
    assert modern == {**config, "max_length": 448, **flags}


@pytest.mark.parametrize("forced", [[[1, 50259]], [[2, 50359]], [[1, None], [2, 12345]]])
def test_prompts_the_flags_cannot_say_are_kept(forced):
    config = {**MULTILINGUAL, "forced_decoder_ids": forced}
    assert prompt_flags(config) is config  # a language without a task, a gap, an unknown task token


def test_a_copied_generation_config_says_the_prompt_with_flags(tiny_en_dir, tmp_path):
    base = linked_copy(tiny_en_dir, tmp_path / "openai-style")
    (base / "generation_config.json").unlink()
    openai = {**json.loads((tiny_en_dir / "generation_config.json").read_text()), "forced_decoder_ids": [[1, 50362]]}
    (base / "generation_config.json").write_text(json.dumps(openai))
    (tmp_path / "lite").mkdir()
    copy_processor_files(base, tmp_path / "lite")
    copied = json.loads((tmp_path / "lite" / "generation_config.json").read_text())
    assert copied == {k: v for k, v in openai.items() if k != "forced_decoder_ids"}
    assert (tmp_path / "lite" / "tokenizer.json").read_bytes() == (tiny_en_dir / "tokenizer.json").read_bytes()


def test_multilingual_base_transcribes_with_the_task_flag_alone(base_dir, speech_test_dir):
    """No language, no task given: generate() detects English and adds <|transcribe|> from the saved flag. Without
    it (and without forced_decoder_ids) it would add no task token and degenerate."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from lite_whisper.data.audio import load_audio_dataset

    saved = json.loads((base_dir / "generation_config.json").read_text())
    assert saved["task"] == "transcribe" and "forced_decoder_ids" not in saved and "language" not in saved
    samples = load_audio_dataset(str(speech_test_dir), max_samples=3)
    model = WhisperForConditionalGeneration.from_pretrained(base_dir).eval()
    processor = WhisperProcessor.from_pretrained(base_dir)
    features = processor([s.array for s in samples], sampling_rate=16_000, return_tensors="pt").input_features
    tokens = model.generate(features, return_dict_in_generate=True).sequences
    prompt = processor.tokenizer.convert_ids_to_tokens(tokens[0, :4].tolist())
    assert prompt == ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    texts = processor.batch_decode(tokens, skip_special_tokens=True)
    assert word_error_rate(texts, [s.text for s in samples]) < 15, texts

    del model.generation_config.task  # the trap the flag avoids: detection, no task token, repetitions
    degenerate = processor.batch_decode(model.generate(features), skip_special_tokens=True)
    assert word_error_rate(degenerate, [s.text for s in samples]) > 50, degenerate


RUN = r"""
import json, logging, re, sys, warnings

notes = json.loads(sys.argv[1])


class Raise(logging.Handler):  # transformers' notes are log records: raise where they are logged
    def emit(self, record):
        if any(note in record.getMessage() for note in notes):
            raise RuntimeError("transformers: " + record.getMessage())


logging.getLogger("transformers").addHandler(Raise())
for note in notes:
    warnings.filterwarnings("error", message=".*" + re.escape(note))
from lite_whisper.cli import main

for command in json.loads(sys.argv[2]):
    if main(command) != 0:
        sys.exit(f"exit status != 0: {command}")
"""


def _run_with_notes_as_errors(commands: list[list[str]], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUN, json.dumps(NOTES), json.dumps(commands)], capture_output=True,
                          text=True, cwd=cwd, timeout=1200)


@pytest.mark.slow
def test_conversion_and_eval_print_no_generation_notes(tiny_en_dir, speech_calibration_dir, speech_test_dir,
                                                      tmp_path):
    """From a base with openai's generation config (forced_decoder_ids), as a Hub base has: a conversion with
    recovery (pseudo-labels, quality check) and the evaluation of the lite model and of the base."""
    base = linked_copy(tiny_en_dir, tmp_path / "openai-style")
    (base / "generation_config.json").unlink()
    openai = {**json.loads((tiny_en_dir / "generation_config.json").read_text()), "forced_decoder_ids": [[1, 50362]]}
    (base / "generation_config.json").write_text(json.dumps(openai))
    lite, data = tmp_path / "lite", str(speech_test_dir)
    commands = [
        ["convert", str(base), "--output", str(lite), "--calibration", str(speech_calibration_dir), "--threshold",
         "0.99:0.999", "--one-shot", "--num-samples", "8", "--pack-seconds", "28", "--recovery", "on",
         "--recovery-steps", "2", "--augment-copies", "0"],
        ["eval", str(lite), "--dataset", data, "--max-samples", "4", "--no-save"],
        ["eval", str(base), "--dataset", data, "--max-samples", "4", "--no-save"],
    ]
    run = _run_with_notes_as_errors(commands, tmp_path)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    assert not [note for note in NOTES if note in run.stdout + run.stderr]
    assert run.stdout.count("WER ") == 2
    assert "forced_decoder_ids" not in json.loads((lite / "generation_config.json").read_text())


def test_the_check_catches_the_notes(tiny_en_dir, tmp_path):
    """The same runner fails on the old way: forced_decoder_ids in the config and a token limit beside max_length."""
    code = ("import numpy as np; from transformers import WhisperForConditionalGeneration as W; "
            f"m = W.from_pretrained({str(tiny_en_dir)!r}); m.generation_config.forced_decoder_ids = [[1, 50362]]; "
            "m.generate(__import__('torch').zeros(1, 80, 3000), max_new_tokens=2)")
    run = subprocess.run([sys.executable, "-c", RUN.replace("from lite_whisper.cli import main", code), json.dumps(NOTES),
                          "[]"], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert run.returncode != 0 and "RuntimeError: transformers: " in run.stderr, run.stderr[-2000:]
    assert any(note in run.stderr for note in NOTES)

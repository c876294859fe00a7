"""`lite-whisper import-liteasr`: a checkpoint in the efficient-speech/lite-whisper-* (LiteASR) format, with its own
code, becomes a self-contained LiteWhisper folder whose logits equal the source's (loaded with the source's own code)
and which works in the ASR pipeline; shapes that do not fit the base's architecture are refused, naming them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForSpeechSeq2Seq, AutoProcessor, GenerationConfig, pipeline

import modeling_support as support
from base_folder_support import altered_copy, edited_json
from liteasr_support import liteasr_folder
from lite_whisper import cli, modeling
from lite_whisper.compression.lite_model import AUTO_MAP, CUSTOM_PIPELINES
from lite_whisper.wer import word_error_rate

GREEDY = {"num_beams": 1}
# With the fast path (fused first factors, biases inside the GEMMs) the sums are rounded in another order.
FAST_PATH_RTOL = 1e-5  # of the largest logit


@pytest.fixture(scope="module")
def liteasr_dir(tiny_en_dir, tmp_path_factory) -> Path:
    return liteasr_folder(tiny_en_dir, tmp_path_factory.mktemp("liteasr") / "lite-whisper-tiny.en")


def _logits(model, features, decoder_ids):
    with torch.no_grad():
        return model(input_features=features, decoder_input_ids=decoder_ids).logits


def test_imported_checkpoint_has_the_source_logits_and_works_in_the_pipeline(liteasr_dir, tiny_en_dir,
                                                                            speech_test_dir, tmp_path):
    out = tmp_path / "imported"
    assert cli.main(["import-liteasr", str(liteasr_dir), "--base", str(tiny_en_dir), "--output", str(out)]) == 0

    config = json.loads((out / "config.json").read_text())
    assert config["auto_map"] == AUTO_MAP and config["custom_pipelines"] == CUSTOM_PIPELINES
    assert config["low_rank_config"] == json.loads((liteasr_dir / "config.json").read_text())["low_rank_config"]
    for name in modeling.CODE_FILES:  # ours, not the source's
        assert (out / name).read_bytes() == (Path(modeling.__file__).parent / name).read_bytes(), name
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation == json.loads((tiny_en_dir / "generation_config.json").read_text())
    assert generation["alignment_heads"] and generation["max_length"] == 448
    source_weights, weights = load_file(liteasr_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert set(weights) - set(source_weights) <= {"proj_out.weight"}
    assert all(torch.equal(weights[k], t) for k, t in source_weights.items())  # same tensors, same dtype (fp16)

    source = AutoModel.from_pretrained(liteasr_dir, trust_remote_code=True, dtype=torch.float32).eval()
    imported = AutoModelForSpeechSeq2Seq.from_pretrained(out, trust_remote_code=True, dtype=torch.float32).eval()
    assert type(source).__module__ != type(imported).__module__  # each with its own code
    audio, reference_text = support.speech(speech_test_dir)[1]
    features = support.features(tiny_en_dir, audio)
    decoder_ids = torch.tensor([[50257, 50362, 1649, 616, 4252]])
    reference = _logits(source, features, decoder_ids)
    fast = _logits(imported, features, decoder_ids)
    assert (fast - reference).abs().max() <= FAST_PATH_RTOL * reference.abs().max()
    for layer in imported.model.encoder.layers:
        layer.fast_path = False  # Whisper's own layer forward, as the source's code runs it
    assert torch.equal(_logits(imported, features, decoder_ids), reference)

    # The pipeline (which fails on the source: it is not a seq2seq model there) transcribes as the source does
    # when given the base's processor and generation config.
    processor = AutoProcessor.from_pretrained(tiny_en_dir)
    source.generation_config = GenerationConfig.from_pretrained(tiny_en_dir)
    with torch.no_grad():
        expected = processor.batch_decode(source.generate(features), skip_special_tokens=True)[0]
    asr = pipeline("automatic-speech-recognition", model=str(out), trust_remote_code=True)
    assert asr(audio, generate_kwargs=GREEDY)["text"] == expected
    assert word_error_rate([expected], [reference_text]) < 20
    chunks = asr(audio, return_timestamps=True, generate_kwargs=GREEDY)["chunks"]
    assert chunks and 0 <= chunks[0]["timestamp"][0] < chunks[-1]["timestamp"][1] <= len(audio) / 16_000 + 1


def test_shapes_that_do_not_fit_the_base_are_refused(liteasr_dir, tiny_en_dir, base_dir, tmp_path, capsys):
    ranks = json.loads((liteasr_dir / "config.json").read_text())["low_rank_config"]
    ranks[0] = {**ranks[0], "fc1": ranks[0]["fc1"] + 16}
    edited = altered_copy(liteasr_dir, tmp_path / "edited", files={
        "config.json": edited_json(liteasr_dir, "config.json", low_rank_config=ranks)})
    cases = [
        (edited, tiny_en_dir, "mismatched weights: model.encoder.layers.0.fc1.weight1 \\(checkpoint \\[384, 320\\], "
                              "expected \\[384, 336\\]\\)"),
        (liteasr_dir, base_dir, "not compressed from a Whisper of .* architecture \\(d_model 384 vs 512"),
        (tiny_en_dir, tiny_en_dir, "not a LiteASR checkpoint"),
    ]
    for source, base, message in cases:
        out = tmp_path / "out"
        code = cli.main(["import-liteasr", str(source), "--base", str(base), "--output", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("lite-whisper import-liteasr: error:"), err
        assert re.search(message, err), err
        assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]

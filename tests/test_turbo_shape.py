"""A turbo-shaped Whisper (large-v3-turbo's structure at tiny dims: 128 mels, a deeper encoder than decoder,
random weights) converts, loads through the ASR pipeline, and keeps its decoder bit for bit: the lite model's
decoder weights are the original's, and fed the same encoder states it computes the same logits exactly."""

from __future__ import annotations

import shutil

import pytest
import torch
from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration, pipeline

from lite_whisper.compression.conversion import convert
from lite_whisper.compression.options import ConversionOptions

import modeling_support as support

TURBO = dict(d_model=64, encoder_layers=4, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
             encoder_ffn_dim=256, decoder_ffn_dim=256, num_mel_bins=128)  # large-v3-turbo: 32 + 4 layers, 128 mels
# At these dims the positional embeddings (1500 x 64) are a third of the encoder: 85% still leaves ranks to cut.
FRACTION = 0.85


@pytest.fixture(scope="module")
def turbo_base(tiny_en_dir, tmp_path_factory):
    """The random turbo-shaped Whisper, saved with tiny.en's tokenizer and a 128-mel feature extractor."""
    folder = tmp_path_factory.mktemp("turbo") / "whisper-turbo-shape"
    config = WhisperConfig.from_pretrained(tiny_en_dir)
    config.update(TURBO)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    for name in ("generation_config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                 "normalizer.json", "added_tokens.json", "special_tokens_map.json"):
        if (tiny_en_dir / name).is_file():
            shutil.copyfile(tiny_en_dir / name, folder / name)
    WhisperFeatureExtractor(feature_size=128).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def turbo_lite(turbo_base, speech_calibration_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("turbo-lite") / "lite"
    options = ConversionOptions(target_params=FRACTION, num_samples=8, batch_size=4, allocation_samples=4,
                                probe_samples=2, sequential=False, allow_degraded=True)  # random: agrees with nothing
    return convert(turbo_base, out, str(speech_calibration_dir), options)


def test_turbo_shape_converts_and_keeps_its_decoder_bitwise(turbo_base, turbo_lite, speech_test_dir):
    original = WhisperForConditionalGeneration.from_pretrained(turbo_base).eval()
    asr = pipeline("automatic-speech-recognition", model=str(turbo_lite), trust_remote_code=True)
    lite = asr.model
    assert type(lite).__name__ == "LiteWhisperForConditionalGeneration"
    assert lite.config.num_mel_bins == 128 and lite.config.decoder_layers == 1 and lite.config.encoder_layers == 4
    assert any(lite.config.low_rank_config), "no projection was factorized"

    lite_state, original_state = lite.state_dict(), original.state_dict()
    decoder_keys = [k for k in original_state if k.startswith("model.decoder.") or k.startswith("proj_out.")]
    assert len(decoder_keys) > 10
    for key in decoder_keys:
        assert torch.equal(lite_state[key], original_state[key]), key

    audio, _ = support.speech(speech_test_dir)[0]
    out = asr(audio, generate_kwargs={"num_beams": 1, "max_new_tokens": 8})  # through the pipeline, as users call it
    assert isinstance(out["text"], str)

    features = asr.feature_extractor(audio, sampling_rate=16_000, return_tensors="pt").input_features
    assert features.shape[1] == 128
    with torch.inference_mode():
        hidden = original.get_encoder()(features).last_hidden_state
        ids = torch.tensor([[original.config.decoder_start_token_id, 50362, 400, 11, 257]])
        expected = original(encoder_outputs=(hidden,), decoder_input_ids=ids).logits
        got = lite(encoder_outputs=(hidden,), decoder_input_ids=ids).logits
        assert torch.equal(got, expected)  # the decoder computes exactly what the original's does
        lite_hidden = lite.get_encoder()(features).last_hidden_state
    assert not torch.equal(lite_hidden, hidden)  # while the encoder is the compressed one

"""LiteWhisperConfig: low_rank_config validation and round trip; config and factor checks of lite_model."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import WhisperConfig

from lite_whisper.compression.lite_model import build_lite_whisper, lite_config_from_whisper
from lite_whisper.modeling import PROJECTIONS, LiteWhisperConfig

import modeling_support as support

TINY = {"encoder_layers": 2, "d_model": 64, "encoder_ffn_dim": 256, "encoder_attention_heads": 4}


def test_round_trip_keeps_ranks_and_model_type(tmp_path):
    ranks = [{"q_proj": 16, "fc1": 32, "fc2": 64}, {}]
    LiteWhisperConfig(low_rank_config=ranks, **TINY).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "lite-whisper"
    assert saved["low_rank_config"] == ranks
    assert LiteWhisperConfig.from_pretrained(tmp_path).low_rank_config == ranks


def test_no_low_rank_config_means_all_dense():
    config = LiteWhisperConfig(**TINY)
    assert config.low_rank_config == [{}, {}]


@pytest.mark.parametrize(
    "low_rank_config, expected",
    [
        ([{}], ["1 entries", "2 layers"]),
        ("q_proj", ["must be a list"]),
        ([{}, ["q_proj"]], ["low_rank_config[1]", "encoder layer 1", "must be a dict"]),
        ([{"qkv": 8}, {}], ["encoder layer 0", "unknown projection 'qkv'"]),
        ([{}, {"v_proj": 0}], ["encoder layer 1, v_proj", "[1, 64]"]),
        ([{"fc1": 65}, {}], ["encoder layer 0, fc1", "64x256", "[1, 64]"]),
        ([{"fc2": 8.0}, {}], ["encoder layer 0, fc2", "8.0"]),
        ([{"k_proj": True}, {}], ["encoder layer 0, k_proj", "True"]),
    ],
)
def test_invalid_low_rank_config_names_layer_and_projection(low_rank_config, expected):
    with pytest.raises(ValueError) as error:
        LiteWhisperConfig(low_rank_config=low_rank_config, **TINY)
    for fragment in expected:
        assert fragment in str(error.value)


def test_lite_config_keeps_every_whisper_field(tiny_en_dir):
    whisper_config = WhisperConfig.from_pretrained(tiny_en_dir)
    ranks = [{name: 32 for name in PROJECTIONS}] * whisper_config.encoder_layers
    config = lite_config_from_whisper(whisper_config, ranks)
    lite, base = config.to_dict(), whisper_config.to_dict()
    ignored = {"model_type", "architectures", "low_rank_config", "transformers_version"}
    assert {k: v for k, v in lite.items() if k not in ignored} == {k: v for k, v in base.items() if k not in ignored}
    assert config.architectures == ["LiteWhisperForConditionalGeneration"]


def test_factor_shapes_are_checked(tiny_en_dir):
    model = support.whisper(tiny_en_dir)
    d = model.config.d_model
    good = (torch.zeros(d, 8), torch.zeros(8, d), torch.zeros(d))
    cases = {
        (1, "q_proj"): ((torch.zeros(d, 8), torch.zeros(4, d), torch.zeros(d)), "encoder layer 1, q_proj: weight2"),
        (0, "fc1"): (good, "encoder layer 0, fc1: weight2"),  # fc1's output is encoder_ffn_dim wide
        (9, "q_proj"): (good, "encoder layer 9, q_proj: the encoder has layers 0..3"),
        (0, "fc3"): (good, "encoder layer 0, fc3: unknown projection"),
    }
    for key, (factor, message) in cases.items():
        with pytest.raises(ValueError, match=message):
            build_lite_whisper(model, {key: factor})

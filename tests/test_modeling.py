"""LiteWhisper model classes on real tiny.en weights: equivalence with Whisper, dtypes, attention
implementations, device_map, torch.compile, the efficient-speech checkpoint layout, and loading errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from transformers import WhisperForConditionalGeneration

from lite_whisper.compression.lite_model import build_lite_whisper
from lite_whisper.modeling import LiteWhisperForConditionalGeneration, LowRankLinear

import modeling_support as support

# Start of a decoder prompt (<|startoftranscript|><|notimestamps|>) and a few text tokens.
DECODER_IDS = torch.tensor([[50257, 50362, 1649, 616, 18410, 373]])
ES_RANKS = support.ES_RANKS


@pytest.fixture(scope="module")
def inputs(tiny_en_dir, speech_test_dir):
    audio, _ = support.speech(speech_test_dir)[0]
    return support.features(tiny_en_dir, audio), DECODER_IDS


@pytest.fixture(scope="module")
def lite_dir(tiny_en_dir, tmp_path_factory):
    return support.saved_full_rank_lite(tiny_en_dir, tmp_path_factory.getbasetemp())


def test_full_rank_factors_reproduce_whisper(tiny_en_dir, inputs):
    lite = support.full_rank_lite(tiny_en_dir)
    projections = [m for m in lite.model.encoder.modules() if isinstance(m, LowRankLinear)]
    assert len(projections) == 6 * lite.config.encoder_layers
    assert all(m.rank == min(m.in_features, m.out_features) for m in projections)
    diff = (support.logits(lite, *inputs) - support.logits(support.whisper(tiny_en_dir), *inputs)).abs().max()
    assert diff <= 1e-4


def test_lite_without_low_rank_projection_is_bit_identical(tiny_en_dir, inputs):
    whisper = support.whisper(tiny_en_dir)
    lite = build_lite_whisper(whisper, {})
    assert isinstance(lite, LiteWhisperForConditionalGeneration)
    assert torch.equal(support.logits(lite, *inputs), support.logits(whisper, *inputs))


def test_generate_with_prompt_matches_whisper(tiny_en_dir, inputs):
    """prompt_ids make Whisper's decoder prompt start with <|startofprev|>; it must reach the decoder as is."""
    prompt = support.processor(tiny_en_dir).get_prompt_ids("Grandmother, winter.", return_tensors="pt")
    features = inputs[0]
    expected = support.whisper(tiny_en_dir).generate(features, prompt_ids=prompt)
    assert torch.equal(support.full_rank_lite(tiny_en_dir).generate(features, prompt_ids=prompt), expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_matches_whisper(dtype, lite_dir, tiny_en_dir, inputs):
    lite = LiteWhisperForConditionalGeneration.from_pretrained(lite_dir, dtype=dtype).eval()
    whisper = WhisperForConditionalGeneration.from_pretrained(tiny_en_dir, dtype=dtype).eval()
    assert {p.dtype for p in lite.parameters()} == {dtype}
    features = inputs[0].to(dtype)
    with torch.no_grad():
        encoded = lite.model.encoder(features).last_hidden_state
        reference = whisper.model.encoder(features).last_hidden_state
    assert (encoded.float() - reference.float()).abs().max() <= 0.05 * reference.float().abs().max()
    # Decoding reuses the encodings (a half-precision encoder is slow on a CPU); 32 tokens show a difference.
    from transformers.modeling_outputs import BaseModelOutput

    tokens = [m.generate(encoder_outputs=BaseModelOutput(last_hidden_state=e), max_new_tokens=32)
              for m, e in ((lite, encoded), (whisper, reference))]
    assert torch.equal(*tokens)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_attention_implementations(attn_implementation, lite_dir, tiny_en_dir, inputs):
    lite = LiteWhisperForConditionalGeneration.from_pretrained(lite_dir, attn_implementation=attn_implementation)
    whisper = WhisperForConditionalGeneration.from_pretrained(tiny_en_dir, attn_implementation=attn_implementation)
    assert lite.config._attn_implementation == attn_implementation
    assert (support.logits(lite.eval(), *inputs) - support.logits(whisper.eval(), *inputs)).abs().max() <= 1e-4


def test_device_map_auto_splits_at_layer_boundaries(lite_dir, inputs, tmp_path):
    """With too little CPU memory, device_map="auto" offloads part of the model to disk; a LiteWhisper encoder
    layer must move as a whole (its class is in _no_split_modules) and the outputs must not change."""
    lite = LiteWhisperForConditionalGeneration.from_pretrained(
        lite_dir, device_map="auto", max_memory={"cpu": "100MB"}, offload_folder=tmp_path
    ).eval()
    placed = lite.hf_device_map
    assert {"cpu", "disk"} <= set(placed.values())
    encoder_keys = [key for key in placed if key.startswith("model.encoder.layers.")]
    assert encoder_keys and all(key.count(".") == 3 for key in encoder_keys), placed
    plain = LiteWhisperForConditionalGeneration.from_pretrained(lite_dir).eval()
    # Offloaded layers run Whisper's own forward (accelerate's hooks load their weights), the others the fast
    # path: the same function with float additions in another order, so equal up to rounding (logits ~10).
    offloaded, reference = support.logits(lite, *inputs), support.logits(plain, *inputs)
    assert (offloaded - reference).abs().max() <= 1e-3


def test_encoder_compiles_as_one_graph(tiny_en_dir, inputs):
    """fullgraph=True fails on any graph break. aot_eager traces like inductor but skips its C++ codegen (a full
    inductor compile of this encoder takes over a minute on 2 CPU cores)."""
    encoder = support.full_rank_lite(tiny_en_dir).model.encoder
    torch._dynamo.reset()
    compiled = torch.compile(encoder, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        expected = encoder(inputs[0]).last_hidden_state
        assert (compiled(inputs[0]).last_hidden_state - expected).abs().max() <= 1e-5


def test_efficient_speech_layout_loads_and_runs(tiny_en_dir, tmp_path, inputs):
    folder = tmp_path / "es"
    reference = support.efficient_speech_folder(tiny_en_dir, folder)
    names = set(safe_open(folder / "model.safetensors", "pt").keys())
    assert "model.encoder.layers.0.self_attn.q_proj.weight1" in names
    assert "model.encoder.layers.1.fc2.weight2" in names and "model.encoder.layers.0.fc2.weight" in names
    loaded = LiteWhisperForConditionalGeneration.from_pretrained(folder).eval()
    assert loaded.config.low_rank_config == ES_RANKS
    assert loaded.model.encoder.layers[0].self_attn.q_proj.weight1.shape == (384, 64)
    assert torch.equal(support.logits(loaded, *inputs), support.logits(reference, *inputs))
    assert torch.equal(loaded.generate(inputs[0]), reference.generate(inputs[0]))


@pytest.mark.parametrize(
    "layer0, expected",
    [
        (
            {**ES_RANKS[0], "q_proj": 48},
            "mismatched weights: model.encoder.layers.0.self_attn.q_proj.weight1 "
            "(checkpoint [384, 64], config [384, 48])",
        ),
        ({**ES_RANKS[0], "fc2": 64}, "missing weights: model.encoder.layers.0.fc2.weight1"),
        (
            {k: v for k, v in ES_RANKS[0].items() if k != "v_proj"},
            "unexpected weights: model.encoder.layers.0.self_attn.v_proj.weight1",
        ),
    ],
)
def test_config_weight_mismatch_is_an_error(layer0, expected, tiny_en_dir, tmp_path):
    folder = tmp_path / "es"
    support.efficient_speech_folder(tiny_en_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["low_rank_config"][0] = layer0
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not match its config") as error:
        LiteWhisperForConditionalGeneration.from_pretrained(folder)
    assert expected in str(error.value)

"""The LiteWhisper encoder's inference fast path against Whisper's plain layer forward (real tiny.en weights,
several rank patterns), and the `lite-whisper bench` command on a tiny model: every ratio it reports is the
one its reported runs give (no assertion on how fast anything is).

Tolerance: fast and plain encoder outputs agree to 3e-4 (max abs) in fp32; they are ~10 in magnitude, so
that is a relative 3e-5: the paths differ only in the order of float additions (fused bias/residual/scale),
which moves single outputs by ~1e-4 depending on the BLAS kernels chosen; a wrong factor moves them by ~1e-1.
"""

from __future__ import annotations

import json
import statistics

import pytest
import torch

from lite_whisper.compression import budget

from lite_whisper import cli
from lite_whisper.benchmarks.speed import config_ranks, shape_config
from lite_whisper.compression.lite_model import build_lite_whisper, save_lite_whisper, set_fast_path, svd_factors
from lite_whisper.modeling import LiteWhisperEncoderLayer

import modeling_support as support

ALL = {"q_proj": 64, "k_proj": 48, "v_proj": 96, "out_proj": 128, "fc1": 160, "fc2": 176}  # q, k, v differ
PATTERNS = {
    "all low-rank, q/k/v ranks differ": [ALL] * 4,
    "mixed dense and low-rank (efficient-speech style)": support.ES_RANKS,
    "one or two of q/k/v low-rank": [{"q_proj": 96}, {"k_proj": 64, "v_proj": 128}, {"q_proj": 32, "fc1": 96},
                                     {"v_proj": 80, "out_proj": 64, "fc2": 200}],
}
TOLERANCE = 3e-4


def _lite(tiny_en_dir, ranks):
    whisper = support.whisper(tiny_en_dir)
    return build_lite_whisper(whisper, svd_factors(whisper, ranks)).eval()


@pytest.fixture(scope="module")
def features(tiny_en_dir, speech_test_dir):
    """Two 30 s windows of real speech features (a batch of 2)."""
    audio = [support.speech(speech_test_dir)[i][0] for i in (0, 1)]
    return support.processor(tiny_en_dir)(audio, sampling_rate=16_000, return_tensors="pt").input_features


def _encode(model, features, fast: bool) -> torch.Tensor:
    encoder = model.get_encoder()
    set_fast_path(encoder, fast)
    try:
        return encoder(features).last_hidden_state
    finally:
        set_fast_path(encoder, True)


@pytest.fixture
def fast_calls(monkeypatch):
    """Counts the layers run through the fast path."""
    calls = []
    original = LiteWhisperEncoderLayer._fast_forward

    def spy(self, hidden_states):
        calls.append(self)
        return original(self, hidden_states)

    monkeypatch.setattr(LiteWhisperEncoderLayer, "_fast_forward", spy)
    return calls


@pytest.mark.parametrize("pattern", PATTERNS)
def test_fast_path_matches_plain_forward(pattern, tiny_en_dir, features, fast_calls):
    model = _lite(tiny_en_dir, PATTERNS[pattern])
    with torch.no_grad():
        plain = _encode(model, features, fast=False)
        assert not fast_calls
        fast = _encode(model, features, fast=True)
    assert len(fast_calls) == model.config.encoder_layers
    assert (fast - plain).abs().max() <= TOLERANCE
    assert plain.abs().max() > 1  # the tolerance is relative to outputs of this size


def test_fused_factors_follow_the_weights(tiny_en_dir, features):
    """The concatenated q/k/v first factors are a cache: not in the state dict, rebuilt after `.to()`,
    in-place updates and loading."""
    model = _lite(tiny_en_dir, [ALL] * 4)
    keys = set(model.state_dict())
    layer = model.get_encoder().layers[0]
    with torch.no_grad():
        _encode(model, features, fast=True)
        assert layer._fused_qkv is not None and set(model.state_dict()) == keys

        layer.self_attn.k_proj.weight1.mul_(0.5)  # in place: the cache must notice
        assert (_encode(model, features, True) - _encode(model, features, False)).abs().max() <= TOLERANCE

        other = _lite(tiny_en_dir, [ALL] * 4)
        other.get_encoder().layers[0].self_attn.q_proj.weight1.mul_(-1)
        model.load_state_dict(other.state_dict())
        assert (_encode(model, features, True) - _encode(other, features, False)).abs().max() <= TOLERANCE

        model.double()
        fast, plain = _encode(model, features.double(), True), _encode(model, features.double(), False)
        assert fast.dtype == torch.float64 and layer._fused_qkv[1].dtype == torch.float64
        assert (fast - plain).abs().max() <= 1e-9


def test_fast_path_gradients_match_plain(tiny_en_dir, features):
    """In eval mode with autograd on (recovery training), the fast path gives the plain path's gradients."""
    model = _lite(tiny_en_dir, support.ES_RANKS)
    weight = model.get_encoder().layers[1].self_attn.q_proj.weight1
    grads = []
    for fast in (True, False):
        model.zero_grad()
        _encode(model, features[:1], fast).square().mean().backward()
        grads.append(weight.grad.clone())
    assert (grads[0] - grads[1]).abs().max() <= 1e-6 * grads[1].abs().max() + 1e-9


def test_output_attentions_uses_whisper_forward(tiny_en_dir, features, fast_calls):
    """Attention weights are recorded from Whisper's attention module: asking for them turns the fast path off."""
    model = _lite(tiny_en_dir, [ALL] * 4)
    encoder = model.get_encoder()
    with torch.no_grad():
        encoder(features[:1], output_attentions=True)
        assert not fast_calls
        encoder(features[:1])
        assert len(fast_calls) == 4
        encoder.config._attn_implementation = "eager"  # the implementation that returns attention weights
        out = encoder(features[:1], output_attentions=True)
    assert len(fast_calls) == 4 and len(out.attentions) == 4 and out.attentions[0].shape == (1, 6, 1500, 1500)


# --- the bench command ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench_lite_dir(tiny_en_dir, tmp_path_factory):
    ranks = [{"q_proj": 128, "k_proj": 128, "v_proj": 192, "fc1": 256, "fc2": 256}] * 4
    folder = save_lite_whisper(_lite(tiny_en_dir, ranks), tmp_path_factory.mktemp("bench") / "lite", tiny_en_dir)
    (folder / "conversion.json").write_text(json.dumps({"base_model": str(tiny_en_dir)}))
    return folder


def _assert_encoder_figures_follow_the_runs(enc: dict, plain: bool) -> None:
    """Every figure of the encoder timing is what its reported runs give: medians, minimums, the speedups."""
    labels = ("baseline", "lite", "lite_plain") if plain else ("baseline", "lite")
    for label in labels:
        runs = enc[label]["runs_ms"]
        assert len(runs) == enc["repeats"] and all(t > 0 for t in runs)
        # (runs reported to 0.01 ms)
        assert enc[label]["median_ms"] == pytest.approx(statistics.median(runs), abs=5e-3)
        assert enc[label]["min_ms"] == pytest.approx(min(runs), abs=5e-3)
    base, lite = enc["baseline"], enc["lite"]
    assert enc["speedup"] == pytest.approx(base["median_ms"] / lite["median_ms"], rel=1e-12)
    per_round = [b / l for b, l in zip(base["runs_ms"], lite["runs_ms"])]
    assert enc["speedup_paired"] == pytest.approx(statistics.median(per_round), rel=1e-4)
    assert enc["speedup_vs_flop_ratio"] == pytest.approx(enc["speedup"] / enc["flop_ratio"], rel=1e-12)
    if plain:
        assert enc["plain_speedup"] == pytest.approx(base["median_ms"] / enc["lite_plain"]["median_ms"], rel=1e-12)
    else:
        assert "plain_speedup" not in enc


def test_bench_command_json(bench_lite_dir, tiny_en_dir, speech_test_dir, tmp_path, capsys):
    """The reported ratios are those of the timed runs reported beside them (encoder and end to end), and the
    cost figures those of the folder's ranks."""
    from lite_whisper.data.audio import load_audio_dataset

    out = tmp_path / "bench.json"
    code = cli.main(["bench", str(bench_lite_dir), "--json", str(out), "--warmup", "0", "--repeats", "3",
                     "--plain", "--rtf-samples", "1", "--rtf-repeats", "3",
                     "--dataset", str(speech_test_dir)])
    assert code == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["baseline"] == str(tiny_en_dir)  # from conversion.json
    enc = result["encoder"]
    assert enc["repeats"] == 3
    _assert_encoder_figures_follow_the_runs(enc, plain=True)
    assert f"speedup {enc['speedup']:.2f}x (median of per-round ratios {enc['speedup_paired']:.2f}x)" in printed
    assert f"plain path {enc['plain_speedup']:.2f}x" in printed

    config = json.loads((bench_lite_dir / "config.json").read_text())
    whisper_config = support.whisper(tiny_en_dir).config
    ranks = {(i, p): r for i, layer in enumerate(config["low_rank_config"]) for p, r in layer.items()}
    assert len(ranks) == 20
    expected = budget.encoder_flops(whisper_config) / budget.encoder_flops(whisper_config, ranks)
    assert enc["flop_ratio"] == pytest.approx(expected, rel=1e-12) and enc["flop_ratio"] > 1
    assert f"FLOP ratio {expected:.2f}x" in printed
    assert enc["params_fraction"] == pytest.approx(
        budget.encoder_params(whisper_config, ranks) / budget.encoder_params(whisper_config))

    rtf = result["rtf"]
    clips = load_audio_dataset(speech_test_dir, max_samples=1)
    assert rtf["num_samples"] == 1 and "greedy" in rtf["decoding"] and rtf["repeats"] == 3
    assert rtf["audio_seconds"] == pytest.approx(sum(len(c.array) for c in clips) / 16_000)
    for label in ("baseline", "lite"):  # the median of the runs it reports (reported to 0.1 ms)
        entry = rtf[label]
        runs = entry["runs_seconds"]
        assert len(runs) == 3 and entry["median_seconds"] == pytest.approx(statistics.median(runs), abs=1e-4)
        assert entry["seconds"] == entry["median_seconds"]
        assert entry["rtf"] == pytest.approx(entry["median_seconds"] / rtf["audio_seconds"], rel=1e-12)
        assert 0 < entry["encoder_median_seconds"] < entry["median_seconds"]
        assert entry["tokens_per_clip"] >= 1 and entry["decoder_calls"] > entry["tokens_per_clip"]
    base, lite = rtf["baseline"], rtf["lite"]
    assert rtf["speedup"] == lite["speedup"] == pytest.approx(base["median_seconds"] / lite["median_seconds"],
                                                              rel=1e-12)
    per_run = [b / x for b, x in zip(base["runs_seconds"], lite["runs_seconds"])]
    assert rtf["speedup_paired"] == pytest.approx(statistics.median(per_run), rel=1e-3)  # runs reported to 0.1 ms
    assert lite["encoder_speedup"] == pytest.approx(base["encoder_median_seconds"] / lite["encoder_median_seconds"])
    assert f"speedup {rtf['speedup']:.2f}x end to end (median of per-run ratios {rtf['speedup_paired']:.2f}x), " \
        f"encoder within generate() {lite['encoder_speedup']:.2f}x" in printed
    assert base["tokens_per_clip"] > 10  # the original transcribes the clip's sentence
    assert "tokens/clip" in printed
    assert 0 <= base["wer"] < 50 and base["words"] > 0  # the dataset has transcripts; the original reads them


def test_bench_needs_a_baseline(tiny_en_dir, tmp_path, capsys):
    folder = save_lite_whisper(_lite(tiny_en_dir, [ALL] * 4), tmp_path / "lite", tiny_en_dir)
    assert cli.main(["bench", str(folder), "--rtf-samples", "0"]) == 2
    assert "--baseline" in capsys.readouterr().err


def test_bench_shape(capsys):
    """Random-weight encoders of a Whisper shape at uniform ranks: the largest multiple of 16 within the fraction,
    and the same ratios of the reported runs as for a real model."""
    code = cli.main(["bench", "--shape", "tiny", "--layers", "1", "--fraction", "0.5", "--warmup", "0",
                     "--repeats", "3", "--plain", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    config = shape_config("tiny", 0.5, layers=1)
    ranks = config_ranks(config)
    assert result["layers"] == 1 and result["rtf"] is None and len(ranks) == 6 and len(set(ranks.values())) == 1
    rank = next(iter(ranks.values()))
    assert rank % 16 == 0 and result["model"].endswith(f"uniform rank {rank}")
    dense = budget.encoder_params(config)
    assert budget.encoder_params(config, ranks) <= 0.5 * dense < budget.encoder_params(
        config, {key: rank + 16 for key in ranks})  # the largest rank that fits
    enc = result["encoder"]
    assert enc["params_fraction"] == pytest.approx(budget.encoder_params(config, ranks) / dense, rel=1e-12)
    assert enc["flop_ratio"] == pytest.approx(
        budget.encoder_flops(config) / budget.encoder_flops(config, ranks), rel=1e-12)
    assert enc["repeats"] == 3
    _assert_encoder_figures_follow_the_runs(enc, plain=True)

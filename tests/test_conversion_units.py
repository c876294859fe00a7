"""Conversion building blocks on small random encoders: statistics, PCA, staged layers, budgets, allocation."""

from __future__ import annotations

import torch
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from lite_whisper.compression.budget import encoder_flops, encoder_params, projection_budget, projection_shapes
from lite_whisper.compression.factors import spectrum
from lite_whisper.compression.ranks import Candidate, Shape, allocate, parse_threshold, threshold_rank
from lite_whisper.compression.statistics import Covariance, calibrate_layer, encoder_inputs, run_layer

import pytest


def small_config(**kw) -> WhisperConfig:
    args = dict(d_model=64, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=256, num_mel_bins=80)
    args.update(kw)
    return WhisperConfig(**args)


@pytest.fixture(scope="module")
def encoder() -> WhisperEncoder:
    torch.manual_seed(0)
    return WhisperEncoder(small_config()).eval()


def test_statistics_pca_equals_explicit_svd():
    torch.manual_seed(1)
    linear = torch.nn.Linear(48, 96)
    x = torch.randn(700, 48) @ torch.randn(48, 48)  # correlated inputs
    cov = Covariance(48)
    for chunk in x.split(128):  # statistics accumulate over batches
        cov.update(chunk)
    spec = spectrum(linear, cov)

    y = x.double() @ linear.weight.double().T + linear.bias.double()
    centered = y - y.mean(0)
    _, s, vh = torch.linalg.svd(centered, full_matrices=False)
    assert torch.allclose(spec.eigenvalues[:48], s[:48].square() / len(x), rtol=1e-5, atol=1e-6)  # float32 products

    k = 16
    weight1, weight2, bias = spec.factors(k)
    v = vh[:k].T
    expected = y.mean(0) + centered @ v @ v.T  # LiteASR: mean + (y - mean) V_k V_k^T
    assert torch.allclose(x.double() @ weight1 @ weight2 + bias, expected, atol=1e-4)
    assert weight1.shape == (48, k) and weight2.shape == (k, 96)


def test_paired_statistics_without_compression_reduce_to_pca():
    """Reduced-rank regression on identical paths is plain PCA (the sequential rule extends LiteASR's)."""
    torch.manual_seed(2)
    linear = torch.nn.Linear(32, 32)
    x = torch.randn(400, 32) @ torch.randn(32, 32)
    one_shot, paired = Covariance(32), Covariance(32, paired=True)
    one_shot.update(x)
    paired.update(x, x)
    a, b = spectrum(linear, one_shot), spectrum(linear, paired)
    for fa, fb in zip(a.factors(8), b.factors(8)):
        assert torch.allclose(fa @ fa.T if fa.dim() == 2 else fa, fb @ fb.T if fb.dim() == 2 else fb, atol=1e-6)


def test_regression_recovers_original_output_from_distorted_input():
    """Sequential fit: the compressed path's input is a linear distortion of the original; the fit undoes it."""
    torch.manual_seed(3)
    linear = torch.nn.Linear(24, 24)
    x_o = torch.randn(2000, 24)
    distortion = torch.eye(24) + 0.3 * torch.randn(24, 24)
    x_c = x_o @ distortion
    cov = Covariance(24, paired=True)
    cov.update(x_c, x_o)
    weight1, weight2, bias = spectrum(linear, cov, damping=1e-8).factors(24)
    y_o = x_o @ linear.weight.T + linear.bias
    naive = x_c @ linear.weight.T + linear.bias
    fitted = (x_c.double() @ weight1 @ weight2 + bias).float()
    assert (fitted - y_o).abs().max() < 1e-3 < (naive - y_o).abs().max()


def test_staged_layer_equals_transformers_layer(encoder):
    torch.manual_seed(4)
    h = torch.randn(2, 1500, 64)
    with torch.no_grad():
        for layer in encoder.layers:
            assert torch.allclose(run_layer(layer, h), layer(h, attention_mask=None), atol=1e-5)
        features = torch.randn(2, 80, 3000)
        hidden = encoder_inputs(encoder, features, batch_size=1)
        for layer in encoder.layers:
            hidden = run_layer(layer, hidden)
        assert torch.allclose(encoder.layer_norm(hidden), encoder(features).last_hidden_state, atol=1e-5)


def test_calibrate_layer_full_rank_reproduces_layer(encoder):
    """Both modes, every projection factorized at full rank: the compressed layer equals the original."""
    from lite_whisper.modeling.modeling_lite_whisper import LowRankLinear, get_projection, set_projection

    torch.manual_seed(5)
    layer = encoder.layers[0]
    h = torch.randn(3, 1500, 64)
    for sequential in (False, True):
        compressed = __import__("copy").deepcopy(layer)

        def fit(names, cov):
            for name in names:
                dense = get_projection(layer, name)
                rank = min(dense.in_features, dense.out_features)
                low = LowRankLinear(dense.in_features, dense.out_features, rank)
                with torch.no_grad():
                    for p, v in zip((low.weight1, low.weight2, low.bias), spectrum(dense, cov, damping=1e-9).factors(rank)):
                        p.copy_(v)
                set_projection(compressed, name, low)

        h_o, h_c = calibrate_layer(layer, compressed, h.clone(), h.clone() if sequential else None, fit, 2)
        with torch.no_grad():
            expected = run_layer(layer, h)
            assert torch.allclose(h_o, expected, atol=1e-4)
            assert torch.allclose(run_layer(compressed, h), expected, atol=1e-3)
            if sequential:
                assert torch.allclose(h_c, expected, atol=1e-3)


def test_budget_counts_match_real_modules():
    from lite_whisper.compression.lite_model import lite_config_from_whisper
    from lite_whisper.modeling.modeling_lite_whisper import LiteWhisperEncoder

    config = small_config()
    dense = WhisperEncoder(config)
    assert encoder_params(config) == sum(p.numel() for p in dense.parameters())
    ranks = {(0, "q_proj"): 16, (0, "k_proj"): 16, (1, "fc1"): 32, (1, "fc2"): 48}
    low_rank = [{p: r for (i, p), r in ranks.items() if i == layer} for layer in range(2)]
    lite = LiteWhisperEncoder(lite_config_from_whisper(config, low_rank))
    assert encoder_params(config, ranks) == sum(p.numel() for p in lite.parameters())
    assert encoder_flops(config, ranks) < encoder_flops(config)


def test_threshold_rule():
    assert parse_threshold("0.99:0.999") == (0.99, 0.999)
    assert parse_threshold("0.95") == (0.95, 0.95)
    for bad in ("1.5:0.9", "abc", "0.9:0.9:0.9", "0:0.5"):
        with pytest.raises(ValueError, match="--threshold"):
            parse_threshold(bad)
    shape = Shape(512, 512)
    eig = torch.tensor([10.0] * 20 + [0.001] * 492, dtype=torch.float64)
    assert threshold_rank(eig, 0.99, shape, 16) == 32  # 20 components -> rounded up to a multiple of 16
    assert threshold_rank(eig, 1.0, shape, 16) is None  # full energy: dense
    flat = torch.ones(512, dtype=torch.float64)
    assert threshold_rank(flat, 0.99, shape, 16) is None  # low rank would not pay


def test_allocation_meets_budget_and_follows_sensitivity():
    config = small_config(d_model=128, encoder_ffn_dim=512, encoder_layers=3)
    shapes = projection_shapes(config)
    spectrum_like = torch.linspace(1, 0.01, 128, dtype=torch.float64) ** 3
    # layer 1 is 10x more sensitive than the others
    cands = {
        key: Candidate(s, lambda r, g=(10.0 if key[0] == 1 else 1.0): g * float(spectrum_like[r or 128:].sum()))
        for key, s in shapes.items()
    }
    budget, per_param = projection_budget(config, target_params=0.5)
    ranks = allocate(cands, budget, 16)
    total = encoder_params(config, ranks)
    assert abs(total - 0.5 * encoder_params(config)) / (0.5 * encoder_params(config)) < 0.01
    assert all(r is None or r % 16 == 0 for r in ranks.values())
    assert (ranks[(1, "q_proj")] or 999) > (ranks[(0, "q_proj")] or 0)
    with pytest.raises(ValueError, match="budget is too small"):
        allocate(cands, 10.0, 16)


def test_pack_clips_fills_windows_in_order_with_gaps():
    import numpy as np

    from lite_whisper.data.windows import pack_clips

    sr = 100  # samples per second, to keep the arrays small
    clips = [np.full(n * sr, i + 1, dtype=np.float32) for i, n in enumerate([4, 5, 3, 12, 2])]
    windows = pack_clips(clips, seconds=10, gap=0.5, sampling_rate=sr)
    # 4 + 0.5 + 5 = 9.5 s fit; adding 0.5 + 3 would exceed 10 s; the 12 s clip stays alone (untruncated).
    assert [len(w) / sr for w in windows] == [9.5, 3.0, 12.0, 2.0]
    first, gap_end = windows[0], int(4.5 * sr)
    assert (first[: 4 * sr] == 1).all() and (first[4 * sr : gap_end] == 0).all() and (first[gap_end:] == 2).all()
    # Nothing is lost or reordered: the speech samples, gaps removed, are the clips one after another.
    speech = np.concatenate([w[w != 0] for w in windows])
    assert np.array_equal(speech, np.concatenate(clips))
    assert len(pack_clips(clips, seconds=30, gap=0.5, sampling_rate=sr)) == 1

"""Block-wise reconstruction (reconstruction.py): the closed-form refit, the training against the original
layers on real tiny.en, and the on-disk activation store."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lite_whisper.compression.activations import ActivationStore
from lite_whisper.compression.allocation import ThresholdChooser
from lite_whisper.compression.factors import spectrum
from lite_whisper.compression.lite_model import build_lite_whisper
from lite_whisper.compression.options import ReconstructionOptions
from lite_whisper.compression.pipelines import OneShotPipeline
from lite_whisper.compression.reconstruction import Windows, layer_errors, low_rank_parameters, reconstruct
from lite_whisper.compression.statistics import Covariance
from lite_whisper.data.windows import speech_frames

import modeling_support as support


def test_refit_equals_its_least_squares_solution():
    """With the output basis V fixed, the refit's first factor and bias minimize ||x' W1 V^T + b - W x - c||^2
    over the compressed inputs x' (damping 0): the least-squares solution computed directly."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(24, 40).double()
    mix = lambda scale: torch.eye(24, dtype=torch.float64) + scale * torch.randn(24, 24, dtype=torch.float64)  # noqa: E731
    x_o = torch.randn(3000, 24, dtype=torch.float64) @ mix(0.1)  # well conditioned: the Gram sums in float32
    x_c = x_o @ mix(0.1) + 0.1
    cov = Covariance(24, paired=True)
    cov.update(x_c, x_o)
    basis = torch.linalg.qr(torch.randn(40, 8, dtype=torch.float64))[0]  # any orthonormal basis
    weight1, weight2, bias = spectrum(linear, cov, damping=0.0).factors(8, basis)

    y = linear(x_o).detach()
    design = torch.cat([x_c, torch.ones(len(x_c), 1, dtype=torch.float64)], 1)
    solution = torch.linalg.lstsq(design, y @ basis).solution  # [W1; c]: the coordinates on V, with intercept
    assert torch.allclose(weight1, solution[:-1], atol=1e-4)
    assert torch.allclose(weight2, basis.T)
    fitted = x_c @ weight1 @ weight2 + bias
    best = design @ solution @ basis.T + (y - y @ basis @ basis.T).mean(0)  # the part off V: its mean
    assert torch.allclose(fitted, best, atol=1e-4)


def test_speech_frames_mark_audio_and_padding():
    mask = speech_frames([16_000, 480_000, 500_000, 1])  # 1 s, 30 s, longer than a window, one sample
    assert mask.shape == (4, 1500)
    assert mask.sum(1).tolist() == [50, 1500, 1500, 1]
    assert mask[0, :50].all() and not mask[0, 50:].any()


def test_activation_store_reads_back_what_it_wrote_and_leaves_no_file():
    store = ActivationStore((3, 5, 2))
    folder = Path(store._tmp.name)
    store[1:3] = torch.arange(20, dtype=torch.float64).reshape(2, 5, 2)
    assert store[2, 4].tolist() == [18.0, 19.0] and store.tensor.dtype == torch.float32
    assert any(folder.iterdir())
    store.close()
    assert not folder.exists()


@pytest.fixture(scope="module")
def compressed(tiny_en_dir, speech_calibration_dir):
    """(original tiny.en, its one-shot PCA lite model, training windows, held-out windows): LiteASR's threshold
    rule on 6 calibration clips, training and held-out windows from disjoint clips."""
    model, extractor = support.whisper(tiny_en_dir), support.processor(tiny_en_dir).feature_extractor
    clips = [array for array, _ in support.speech(speech_calibration_dir)]
    options = ReconstructionOptions(epochs=3, batch_size=2, lr=1e-3, pack_seconds=10)
    train = Windows(clips[:6], extractor, options.pack_seconds, options.padding_weight)
    heldout = Windows(clips[6:9], extractor, options.pack_seconds, options.padding_weight)
    chooser = ThresholdChooser("0.9:0.95", model.config, 16)
    result = OneShotPipeline().compress(model.get_encoder(), train.features, chooser, batch_size=4)
    lite = build_lite_whisper(model, {k: tuple(t.float() for t in v) for k, v in result.factors.items()})
    return model, lite, train, heldout, options


def test_reconstruction_lowers_every_layers_error_below_pca(compressed):
    model, lite, train, heldout, options = compressed
    original = {k: v.clone() for k, v in model.state_dict().items()}
    before = layer_errors(model.get_encoder(), lite.get_encoder(), train)
    held_before = layer_errors(model.get_encoder(), lite.get_encoder(), heldout)
    trained = {id(p) for layer in lite.get_encoder().layers for p in low_rank_parameters(layer)}
    frozen = {k: v.detach().clone() for k, v in lite.named_parameters() if id(v) not in trained}
    assert len(trained) == 3 * sum(len(ranks) for ranks in lite.config.low_rank_config) and frozen

    report = reconstruct(model.get_encoder(), lite.get_encoder(), train, heldout, options, progress=False)

    after = layer_errors(model.get_encoder(), lite.get_encoder(), train)
    assert all(a < b for a, b in zip(after, before)), (before, after)
    for record in report["layers"]:  # the kept epoch is the best held-out one, the start included
        assert record["heldout_error"][record["best_epoch"]] == min(record["heldout_error"])
        assert record["heldout_error"][record["best_epoch"]] <= record["heldout_error_start"] + 1e-9
    assert sum(layer_errors(model.get_encoder(), lite.get_encoder(), heldout)) < sum(held_before)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in original.items())  # the teacher untouched
    state = dict(lite.named_parameters())
    assert all(torch.equal(frozen[k], state[k]) for k in frozen)  # only the factors and their biases trained
    assert not lite.training and report["train_windows"] == len(train)

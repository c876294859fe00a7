"""Timings come from timed calls, warm, interleaved, as the median of the timed runs (timing.py).

The clock is injected: a fake clock that only moves when the model runs, by amounts the test scripts (a hook on
the encoder adds the scripted seconds of each call, one on the decoder a fixed amount per call). Each figure is
then known exactly, and it is chosen so that the median of the timed runs differs from their mean, minimum and
first run, and from anything that would include the warm-up call (scripted 1000 s).
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch
from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration, WhisperProcessor

from lite_whisper.timing import Transcriber, generate_batch, rotations, text_tokens, time_runs, time_transcription

WARMUP_SECONDS = 1000.0
DECODER_SECONDS = 0.01  # per decoder call
# Scripted encoder seconds per batch (2 batches per run), run by run: run totals 8, 1, 3 for the lite model (median
# 3; mean 4, min 1, first 8) and 16, 2, 10 for the baseline (median 10, mean 9.3). Per-run ratios 2, 2, 3.3: median 2.
ENCODER_SCRIPT = {"baseline": [[10.0, 6.0], [1.5, 0.5], [4.0, 6.0]], "lite": [[5.0, 3.0], [0.5, 0.5], [2.0, 1.0]]}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _tiny_random_whisper(tiny_en_dir, seed: int) -> WhisperForConditionalGeneration:
    config = WhisperConfig.from_pretrained(tiny_en_dir)
    config.update(dict(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                       decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64))
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig.from_pretrained(tiny_en_dir)
    return model


class Script:
    """Moves the fake clock in the model's encoder (scripted seconds per call) and decoder (fixed per call), and
    records the decoder calls that follow each encoder call."""

    def __init__(self, model, clock: FakeClock, encoder_seconds: list[float]) -> None:
        self.clock, self.encoder_seconds = clock, list(encoder_seconds)
        self.calls_after_encoder: list[int] = []
        self.handles = [model.get_encoder().register_forward_hook(self._encoder),
                        model.get_decoder().register_forward_hook(self._decoder)]

    def _encoder(self, *_) -> None:
        self.clock.now += self.encoder_seconds.pop(0)
        self.calls_after_encoder.append(0)

    def _decoder(self, *_) -> None:
        self.clock.now += DECODER_SECONDS
        self.calls_after_encoder[-1] += 1


def test_time_runs_reports_the_median_of_the_timed_runs():
    clock = FakeClock()
    script = {"a": [WARMUP_SECONDS, 8.0, 1.0, 3.0], "b": [WARMUP_SECONDS, 2.0, 7.0, 5.0]}
    order = []

    def run(label):
        def call():
            order.append(label)
            clock.now += script[label].pop(0)
        return call

    out = time_runs({"a": run("a"), "b": run("b")}, torch.device("cpu"), warmup=1, repeats=3, clock=clock)
    assert out["a"]["runs_ms"] == [8000.0, 1000.0, 3000.0] and out["a"]["median_ms"] == 3000.0
    assert out["b"]["median_ms"] == 5000.0 and out["b"]["min_ms"] == 2000.0
    assert order == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-up first, then rounds with the first rotating


def test_rotations_alternate_the_first_model():
    assert list(rotations(["x", "y", "z"], 4)) == [["x", "y", "z"], ["y", "z", "x"], ["z", "x", "y"], ["x", "y", "z"]]


def test_transcription_timing_is_the_median_of_warm_interleaved_runs(tiny_en_dir):
    processor = WhisperProcessor.from_pretrained(tiny_en_dir)
    clock = FakeClock()
    models = {"baseline": _tiny_random_whisper(tiny_en_dir, 0), "lite": _tiny_random_whisper(tiny_en_dir, 1)}
    scripts = {label: Script(m, clock, [WARMUP_SECONDS] + [s for run in ENCODER_SCRIPT[label] for s in run])
               for label, m in models.items()}
    rng = np.random.default_rng(0)
    arrays = [rng.normal(0, 0.1, n).astype(np.float32) for n in (16_000, 24_000, 8_000)]  # batches of 2, then 1
    transcribers = {label: Transcriber(m, processor, {"max_new_tokens": 5}) for label, m in models.items()}

    result = time_transcription(transcribers, arrays, batch_size=2, repeats=3, warmup=1, clock=clock)

    for label, script in scripts.items():
        calls = script.calls_after_encoder[1:]  # after the warm-up batch
        per_batch = [enc + DECODER_SECONDS * n
                     for enc, n in zip([s for run in ENCODER_SCRIPT[label] for s in run], calls)]
        runs = [per_batch[0] + per_batch[1], per_batch[2] + per_batch[3], per_batch[4] + per_batch[5]]
        entry = result[label]
        assert entry["runs_seconds"] == pytest.approx(runs, abs=1e-9)
        assert entry["median_seconds"] == pytest.approx(statistics.median(runs), abs=1e-9)
        assert entry["median_seconds"] not in (pytest.approx(statistics.mean(runs)), pytest.approx(min(runs)),
                                               pytest.approx(runs[0]))
        assert entry["encoder_median_seconds"] == pytest.approx(statistics.median(map(sum, ENCODER_SCRIPT[label])))
        assert entry["rtf"] == pytest.approx(entry["median_seconds"] / 3.0)  # 3 s of audio
        assert entry["decoder_calls"] == calls[0] + calls[1] and calls[:2] == calls[2:4] == calls[4:]
        assert not script.encoder_seconds  # every scripted call happened: one warm-up batch, 3 runs of 2

    assert result["lite"]["speedup_paired"] == pytest.approx(2.0, rel=0.01)  # per-run ratios ~2, ~2, ~3.3
    assert result["lite"]["encoder_speedup"] == pytest.approx(10 / 3)
    assert result["clips"] == 3 and result["repeats"] == 3 and result["threads"] == torch.get_num_threads()

    # tokens per clip: the non-special tokens of what generate() returns
    for script in scripts.values():
        for handle in script.handles:
            handle.remove()
    counts = [n for batch in (arrays[:2], arrays[2:]) for n in text_tokens(generate_batch(transcribers["lite"], batch),
                                                                          processor)]
    assert result["lite"]["tokens_per_clip"] == pytest.approx(sum(counts) / 3)
    assert 0 < result["lite"]["tokens_per_clip"] <= 5


def test_the_demo_table_shows_both_models_from_the_same_runs(tmp_path):
    """The demo's original row takes its time from the lite model's interleaved runs (never from a run of its own
    at another moment), and the table shows tokens per clip beside each real-time factor."""
    from lite_whisper.publish.card import results_table, timing_note
    from lite_whisper.evaluation.evaluate import timed_beside

    entry = lambda rtf, tokens: {"rtf": rtf, "median_seconds": 3 * rtf, "tokens_per_clip": tokens}  # noqa: E731
    timing = {"baseline": entry(0.1, 12.5), "model": entry(0.08, 31.0), "baseline_model": str(tmp_path / "orig"),
              "clips": 4, "repeats": 3, "device": "cpu", "threads": 1, "batch_size": 8}
    common = {"encoder_params": 1e6, "wer": 5.0, "size_on_disk_bytes": 2**20}
    lite = {**common, "model": str(tmp_path / "lite"), "label": "lite", "low_rank": True, "rtf": 0.08,
            "timing": timing, "encoder_params": 7e5}
    original = {**common, "model": str(tmp_path / "orig"), "label": "original", "rtf": None, "timing": None}
    shared = timed_beside(original, lite)
    assert shared["rtf"] == 0.1 and shared["timing"]["model"]["tokens_per_clip"] == 12.5
    table = results_table([shared, lite])
    assert "| original | 1.00M (100%) | 5.00 | n/a | n/a | 0.100 | 12.5 |" in table and "| 0.080 | 31.0 |" in table
    assert "median of 3 runs, the original and the lite model alternating" in timing_note([shared, lite])
    with pytest.raises(ValueError, match="timed against"):
        timed_beside({**original, "model": str(tmp_path / "other")}, lite)
    with pytest.raises(ValueError, match="timed alone"):
        timed_beside(original, {**lite, "timing": {"model": entry(1, 1)}})

"""Choosing ranks as the layer pass goes: by energy threshold, or by the budget re-allocated with fresh spectra.

A chooser is called with the spectra of the projections about to be fitted and returns their ranks. The budget
chooser starts from one-shot spectra of every projection on a few windows and the measured sensitivity of each
(sensitivity.py), then re-runs the greedy allocation (ranks.allocate) each time fresher spectra arrive, with the
ranks already fitted kept fixed.
"""

from __future__ import annotations

from typing import Mapping

import torch
from tqdm.auto import tqdm

from lite_whisper.compression import budget as budget_mod
from lite_whisper.compression import distributed
from lite_whisper.compression.factors import Spectrum, spectrum
from lite_whisper.compression.options import ConversionOptions
from lite_whisper.compression.ranks import Candidate, allocate, parse_threshold, threshold_rank
from lite_whisper.compression.sensitivity import measure_gains
from lite_whisper.compression.statistics import calibrate_layer, encoder_inputs
from lite_whisper.modeling import PROJECTIONS
from lite_whisper.modeling.modeling_lite_whisper import get_projection

from lite_whisper.compression.types import Key, Rank
ATTENTION = PROJECTIONS[:4]  # q, k, v, out: the threshold's first energy; fc1, fc2 take the second


class ThresholdChooser:
    def __init__(self, threshold: str, config, multiple: int):
        self.attention, self.mlp = parse_threshold(threshold)
        self.shapes, self.multiple = budget_mod.projection_shapes(config), multiple

    def __call__(self, specs: Mapping[Key, Spectrum]) -> dict[Key, Rank]:
        return {
            key: threshold_rank(
                spec.eigenvalues, self.attention if key[1] in ATTENTION else self.mlp, self.shapes[key], self.multiple
            )
            for key, spec in specs.items()
        }


class BudgetChooser:
    """Re-allocates the whole remaining budget each time, with the newest spectra; fitted ranks stay fixed."""

    def __init__(self, config, spectra: dict[Key, Spectrum], gains: dict[Key, float], budget: float,
                 cost_per_param: float, multiple: int, caps: Mapping[Key, Rank] | None = None):
        self.shapes, self.spectra, self.gains = budget_mod.projection_shapes(config), dict(spectra), gains
        self.budget, self.cost_per_param, self.multiple = budget, cost_per_param, multiple
        self.fixed: dict[Key, Rank] = {}
        self.caps = dict(caps or {})  # ranks may not grow beyond these (iterative rounds)

    def candidates(self) -> dict[Key, Candidate]:
        return {
            key: Candidate(self.shapes[key], lambda r, s=self.spectra[key], g=self.gains[key]: g * s.tail(r),
                           self.cost_per_param)
            for key in self.shapes
        }

    def allocation(self) -> dict[Key, Rank]:
        return allocate(self.candidates(), self.budget, self.multiple, fixed=self.fixed, caps=self.caps)

    def __call__(self, specs: Mapping[Key, Spectrum]) -> dict[Key, Rank]:
        self.spectra.update(specs)
        ranks = self.allocation()
        chosen = {key: ranks[key] for key in specs}
        self.fixed.update(chosen)
        return chosen


def initial_spectra(encoder, features: torch.Tensor, batch_size: int, probe_samples: int):
    """One-shot spectra of every projection on a few windows, and the probe windows' inputs of every layer."""
    spectra: dict[Key, Spectrum] = {}
    h = encoder_inputs(encoder, features, batch_size)
    probe_inputs = [h[:probe_samples].clone()]
    for idx, layer in enumerate(tqdm(encoder.layers, desc="spectra", unit="layer")):
        def record(names, cov, idx=idx, layer=layer):
            for n in names:
                spectra[(idx, n)] = spectrum(get_projection(layer, n), cov)

        h, _ = calibrate_layer(layer, layer, h, None, record, batch_size)
        probe_inputs.append(h[:probe_samples].clone())
    return spectra, probe_inputs


def probe_ranks_uniform(config, budget: float, cost_per_param: float, multiple: int) -> dict[Key, Rank]:
    """The ranks a uniform cut to the budget would give: where sensitivity is first measured."""
    shapes = budget_mod.projection_shapes(config)
    fraction = budget / (cost_per_param * sum(s.weight_params(None) for s in shapes.values()))
    ranks = {}
    for key, s in shapes.items():
        k = int(fraction * s.d_in * s.d_out / (s.d_in + s.d_out) // multiple) * multiple
        ranks[key] = min(max(k, multiple), s.max_rank(multiple)) or None
    return ranks


def make_chooser(model, features: torch.Tensor, options: ConversionOptions, result_gains: dict,
                 caps: Mapping[Key, Rank] | None = None):
    """The rank chooser that `options` ask for; budget modes measure spectra and sensitivity first (into
    `result_gains`), on `model` as it is (the original, or the current model of an iterative round, whose ranks
    `caps` bound)."""
    config = model.config
    if options.threshold is not None:
        return ThresholdChooser(options.threshold, config, options.rank_multiple)
    budget, per_param = budget_mod.projection_budget(config, options.target_params, options.target_speedup)
    encoder = model.get_encoder()
    spectra, probe_inputs = initial_spectra(encoder, features[: options.allocation_samples], options.batch_size,
                                            options.probe_samples)
    ranks = probe_ranks_uniform(config, budget, per_param, options.rank_multiple)
    if caps:
        ranks = {key: _capped(rank, caps.get(key)) for key, rank in ranks.items()}
    gains: dict[Key, float] = {}
    for _ in range(max(1, options.sensitivity_rounds)):
        mine = distributed.share(spectra)  # probes split over processes, gains gathered: same for all
        gains = distributed.merge(measure_gains(encoder, probe_inputs, mine, ranks))
        chooser = BudgetChooser(config, spectra, gains, budget, per_param, options.rank_multiple, caps)
        ranks = chooser.allocation()
    result_gains.update(gains)
    return BudgetChooser(config, spectra, gains, budget, per_param, options.rank_multiple, caps)


def _capped(rank: Rank, cap: Rank) -> Rank:
    if cap is None:
        return rank
    return cap if rank is None else min(rank, cap)

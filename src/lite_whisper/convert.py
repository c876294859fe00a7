"""Conversion: base Whisper -> calibration -> ranks -> factors -> a LiteWhisper folder, written atomically.

The encoder is compressed layer by layer (sequential mode, the default): layer l is calibrated on the outputs
of the already-compressed layers < l and fitted to the original model's outputs (factorize.py), and each
projection's rank is chosen just before it is fitted — by an energy threshold, or by re-running the budget
allocation with the freshest spectra (allocate, re-calibrate what follows, re-allocate).
"""

from __future__ import annotations

import copy
import hashlib
import json
import resource
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import budget as budget_mod
from . import distributed
from .calibration import calibrate_layer, encoder_inputs, log_mel_features, pack_clips
from .factorize import Spectrum, spectrum
from .modeling import PROJECTIONS
from .ranks import Candidate, Rank, allocate, parse_threshold, threshold_rank
from .recovery import RecoveryOptions
from .sensitivity import measure_gains
from .validation import validate_inputs

Key = tuple[int, str]
# Below this many calibration windows the sequential regressions were seen to overfit (8 clips, and 32 clips
# packed into 9 windows, both on tiny.en).
MIN_SEQUENTIAL_SAMPLES = 16
ATTENTION = ("q_proj", "k_proj", "v_proj", "out_proj")
# `--recovery auto` distils budgets below this share of the encoder's parameters (or the FLOP speedup that
# removes as much), where the layer-wise fits alone lose accuracy.
AUTO_RECOVERY_BELOW = 0.75


@dataclass
class ConversionOptions:
    """How to compress. Exactly one of `threshold`, `target_params`, `target_speedup`."""

    threshold: str | None = None  # "A:M" energy for attention:MLP projections
    target_params: float | None = None  # fraction of the encoder's parameters
    target_speedup: float | None = None  # encoder FLOP speedup
    rank_multiple: int = 16
    sequential: bool = True
    num_samples: int = 128
    # >0: short clips concatenated into windows of at most this many seconds. On base (64 clips -> 19
    # windows, 50% budget) 15 s halved the conversion time at equal WER (12.1 vs 12.6); on tiny.en with 32
    # clips (-> 9 windows) the sequential regressions overfit (WER 11.6 vs 6.6), so it is opt-in.
    pack_seconds: float = 0.0
    batch_size: int = 8
    allocation_samples: int = 16  # calibration windows for the one-shot spectra the first allocation uses
    probe_samples: int = 4  # calibration windows for the sensitivity probes
    sensitivity_rounds: int = 1  # >1: re-probe at the allocated ranks and re-allocate
    # Recovery (recovery.py): distillation through the frozen decoder after the layer-wise fits.
    recovery: RecoveryOptions | None = None  # None: off
    heldout: float = 0.15  # share of the calibration clips held out for recovery's early stopping
    augment_copies: int = 2  # augmented copies of each training clip for recovery
    # Recovery windows pack clips up to this many seconds (0: one clip per window). A 3 s clip alone is 90%
    # padding: packed, each step's encoder passes carry ~10x the speech.
    recovery_pack_seconds: float = 28.0
    augment_calibration: bool = False  # statistics on augmented clips (level, noise) instead of the clips as given
    device: str = "cpu"
    dtype: str = "float32"

    def validate(self) -> None:
        modes = [self.threshold is not None, self.target_params is not None, self.target_speedup is not None]
        if sum(modes) != 1:
            raise ValueError("choose exactly one of --threshold, --target-params, --target-speedup")
        if self.threshold is not None:
            parse_threshold(self.threshold)
        if self.rank_multiple < 1:
            raise ValueError(f"--rank-multiple {self.rank_multiple}: must be >= 1")
        if self.num_samples < 1:
            raise ValueError(f"--num-samples {self.num_samples}: must be >= 1")
        if not 0 <= self.pack_seconds <= 30:
            raise ValueError(f"--pack-seconds {self.pack_seconds}: expected 0 (one clip per window) to 30")
        if self.dtype not in ("float32", "float16", "bfloat16"):
            raise ValueError(f"--dtype {self.dtype}: expected float32, float16 or bfloat16")
        if self.recovery is not None:
            self.recovery.validate()
            if not 0 <= self.recovery_pack_seconds <= 30:
                raise ValueError(f"--recovery-pack-seconds {self.recovery_pack_seconds}: expected 0 (one clip per "
                                 "window) to 30")
            if not 0 < self.heldout < 1:
                raise ValueError(f"--heldout {self.heldout}: expected a share of the calibration clips in (0, 1)")
            if self.augment_copies < 0:
                raise ValueError(f"--augment-copies {self.augment_copies}: must be >= 0")


@dataclass
class CompressionResult:
    factors: dict[Key, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    ranks: dict[Key, Rank] = field(default_factory=dict)
    energy: dict[Key, float] = field(default_factory=dict)
    gains: dict[Key, float] = field(default_factory=dict)
    targets: torch.Tensor | None = None  # the original encoder's outputs on the calibration windows
    recovery: dict = field(default_factory=dict)


def recovery_by_default(options: ConversionOptions) -> bool:
    """Whether `--recovery auto` turns recovery on: budgets below AUTO_RECOVERY_BELOW, never thresholds."""
    if options.target_params is not None:
        return options.target_params < AUTO_RECOVERY_BELOW
    if options.target_speedup is not None:
        return options.target_speedup > 1 / AUTO_RECOVERY_BELOW
    return False


# --- rank choosers: called with the fresh spectra of projections about to be fitted -------------------


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
                 cost_per_param: float, multiple: int):
        self.shapes, self.spectra, self.gains = budget_mod.projection_shapes(config), dict(spectra), gains
        self.budget, self.cost_per_param, self.multiple = budget, cost_per_param, multiple
        self.fixed: dict[Key, Rank] = {}

    def candidates(self) -> dict[Key, Candidate]:
        return {
            key: Candidate(self.shapes[key], lambda r, s=self.spectra[key], g=self.gains[key]: g * s.tail(r),
                           self.cost_per_param)
            for key in self.shapes
        }

    def allocation(self) -> dict[Key, Rank]:
        return allocate(self.candidates(), self.budget, self.multiple, fixed=self.fixed)

    def __call__(self, specs: Mapping[Key, Spectrum]) -> dict[Key, Rank]:
        self.spectra.update(specs)
        ranks = self.allocation()
        chosen = {key: ranks[key] for key in specs}
        self.fixed.update(chosen)
        return chosen


# --- the layer-by-layer pass ---------------------------------------------------------------------


def compress_encoder(encoder, features: torch.Tensor, chooser, options: ConversionOptions) -> CompressionResult:
    """Calibrate and factorize every encoder layer in order; return factors, ranks and energy kept."""
    from .modeling.modeling_lite_whisper import LowRankLinear, get_projection, set_projection

    result = CompressionResult()
    h_o = encoder_inputs(encoder, features, options.batch_size)
    h_c = h_o.clone() if options.sequential else None
    dtype = next(encoder.parameters()).dtype
    for idx, layer in enumerate(tqdm(encoder.layers, desc="compressing layers", unit="layer")):
        compressed = copy.deepcopy(layer)

        def fit(names, cov, idx=idx, layer=layer, compressed=compressed):
            cov.all_reduce()  # sums over every process's windows: all fit the same factors
            specs = {(idx, n): spectrum(get_projection(layer, n), cov) for n in names}
            for key, rank in chooser(specs).items():
                spec = specs[key]
                result.ranks[key], result.energy[key] = rank, spec.energy_kept(rank)
                if rank is None:
                    continue
                with torch.inference_mode(False):  # kept (normal tensors) in the model's dtype: float64 is
                    factors = tuple(t.to(dtype) for t in spec.factors(rank))  # GBs for large-v3
                result.factors[key] = factors
                dense = get_projection(layer, key[1])
                low = LowRankLinear(dense.in_features, dense.out_features, rank, device=dense.weight.device,
                                    dtype=dtype)
                with torch.no_grad():
                    for param, value in zip((low.weight1, low.weight2, low.bias), factors):
                        param.copy_(value)
                set_projection(compressed, key[1], low)

        h_o, h_c = calibrate_layer(layer, compressed, h_o, h_c, fit, options.batch_size)
    with torch.inference_mode():
        result.targets = encoder.layer_norm(h_o)
    return result


def initial_spectra(encoder, features: torch.Tensor, options: ConversionOptions):
    """One-shot spectra of every projection on a few windows, and the probe windows' inputs of every layer."""
    from .modeling.modeling_lite_whisper import get_projection

    spectra: dict[Key, Spectrum] = {}
    h = encoder_inputs(encoder, features, options.batch_size)
    probe_inputs = [h[: options.probe_samples].clone()]
    for idx, layer in enumerate(tqdm(encoder.layers, desc="spectra", unit="layer")):
        def record(names, cov, idx=idx, layer=layer):
            for n in names:
                spectra[(idx, n)] = spectrum(get_projection(layer, n), cov)

        h, _ = calibrate_layer(layer, layer, h, None, record, options.batch_size)
        probe_inputs.append(h[: options.probe_samples].clone())
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


def make_chooser(model, features: torch.Tensor, options: ConversionOptions, result_gains: dict):
    config = model.config
    if options.threshold is not None:
        return ThresholdChooser(options.threshold, config, options.rank_multiple)
    budget, per_param = budget_mod.projection_budget(config, options.target_params, options.target_speedup)
    encoder = model.get_encoder()
    spectra, probe_inputs = initial_spectra(encoder, features[: options.allocation_samples], options)
    ranks = probe_ranks_uniform(config, budget, per_param, options.rank_multiple)
    gains: dict[Key, float] = {}
    for _ in range(max(1, options.sensitivity_rounds)):
        mine = distributed.share(spectra)  # probes split over processes, gains gathered: same for all
        gains = distributed.merge(measure_gains(encoder, probe_inputs, mine, ranks))
        chooser = BudgetChooser(config, spectra, gains, budget, per_param, options.rank_multiple)
        ranks = chooser.allocation()
    result_gains.update(gains)
    return BudgetChooser(config, spectra, gains, budget, per_param, options.rank_multiple)


# --- the whole conversion ------------------------------------------------------------------------


def load_base(base: str | Path, device: str = "cpu", dtype: str = "float32"):
    """The base Whisper checkpoint (folder or Hub id); anything that is not a plain Whisper is refused."""
    from transformers import PretrainedConfig, WhisperForConditionalGeneration

    try:
        config, _ = PretrainedConfig.get_config_dict(str(base))
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read a model config from {str(base)!r}: {err}") from err
    model_type = config.get("model_type")
    if model_type != "whisper":
        hint = " (it is already a LiteWhisper)" if model_type == "lite-whisper" else ""
        raise ValueError(
            f"{str(base)!r} is a {model_type!r} model{hint}, not a Whisper checkpoint: "
            "convert from an original Whisper (e.g. openai/whisper-base or a folder made by import-ct2)"
        )
    model = WhisperForConditionalGeneration.from_pretrained(base, dtype=getattr(torch, dtype))
    return model.to(device).eval()


def calibration_clips(calibration: str | Sequence[str], num_samples: int, *, config=None, split="train",
                      text_column=None) -> tuple[list, list]:
    """The calibration audio, 16 kHz mono arrays of `num_samples` clips, and what each dataset gave
    (CalibrationPart: dataset, language, clips). Several datasets are mixed: see calibration_mix."""
    from .data.calibration_mix import load_calibration_mix

    samples, parts = load_calibration_mix(calibration, num_samples, config=config, split=split,
                                          text_column=text_column)
    if not samples:
        raise ValueError(f"no audio found in {calibration!r} (split {split!r})")
    return [s.array for s in samples], parts


def windows(arrays: list, feature_extractor, pack_seconds: float = 0.0) -> torch.Tensor:
    """Whisper's 30 s log-mel windows of the clips, packed first when `pack_seconds` > 0."""
    return log_mel_features(pack_clips(arrays, pack_seconds) if pack_seconds > 0 else arrays, feature_extractor)


def split_heldout(arrays: list, share: float, seed: int = 0) -> tuple[list, list]:
    """(training clips, held-out clips): a seeded `share` of the clips (at least one) is held out."""
    count = max(1, round(share * len(arrays)))
    if count >= len(arrays):
        raise ValueError(f"{len(arrays)} calibration clips cannot spare {count} for the held-out slice: "
                         "use more --num-samples")
    order = torch.randperm(len(arrays), generator=torch.Generator().manual_seed(seed)).tolist()
    held = set(order[:count])
    return [a for i, a in enumerate(arrays) if i not in held], [a for i, a in enumerate(arrays) if i in held]


def run_recovery(teacher, student, feature_extractor, train_clips: list, heldout_clips: list,
                 options: ConversionOptions) -> dict:
    """Distil the student on augmented copies of the training clips, stopping early on the held-out clips."""
    from .augment import Augmentation, augmented_copies
    from .recovery import distillation_set, pseudo_labels, recover

    seed, pack = options.recovery.seed, options.recovery_pack_seconds
    labels = pseudo_labels(teacher, feature_extractor, train_clips + heldout_clips)
    clips, sources = augmented_copies(train_clips, options.augment_copies, Augmentation(), seed=seed)
    # Data-parallel over processes: each trains on its share of the windows, gradients are averaged, and every
    # process scores the whole held-out slice, so all stop at the same step with the same factors.
    mine = list(range(len(clips)))[distributed.process_index()::distributed.num_processes()]
    train = distillation_set(teacher, feature_extractor, [clips[i] for i in mine], [labels[sources[i]] for i in mine],
                             pack)
    heldout = distillation_set(teacher, feature_extractor, heldout_clips, labels[len(train_clips):], pack)
    report = recover(student, train, heldout, options.recovery, gradient_hook=distributed.average_gradients)
    report.update(heldout_clips=len(heldout_clips), train_clips=len(train_clips),
                  augment_copies=options.augment_copies, pack_seconds=pack)
    return report


def folder_hash(path: str | Path) -> str | None:
    """SHA-256 of a local model folder's weights (None for a Hub id)."""
    path = Path(path)
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for f in sorted(path.glob("*.safetensors")):
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 24), b""):
                digest.update(chunk)
    return digest.hexdigest()


def low_rank_config(num_layers: int, ranks: Mapping[Key, Rank]) -> list[dict[str, int]]:
    return [{p: ranks[(i, p)] for p in PROJECTIONS if ranks.get((i, p)) is not None} for i in range(num_layers)]


def convert(
    base: str | Path,
    output: str | Path,
    calibration: str | Sequence[str],
    options: ConversionOptions,
    *,
    dataset_config: str | None = None,
    split: str = "train",
    overwrite: bool = False,
) -> Path:
    """Convert `base` into a LiteWhisper folder at `output`; returns the path. Nothing is left on failure."""
    from .lite_model import build_lite_whisper, save_lite_whisper

    # Every input checked first, in seconds: a bad base or calibration set must not cost a calibration.
    inputs = validate_inputs(base, output, calibration, options, dataset_config=dataset_config, split=split,
                             overwrite=overwrite)
    output = inputs.output
    start = time.time()
    torch.manual_seed(0)
    model = load_base(base, distributed.setup(options.device), options.dtype)
    from transformers import WhisperFeatureExtractor

    feature_extractor = WhisperFeatureExtractor.from_pretrained(base)
    clips, parts = calibration_clips(calibration, options.num_samples, config=dataset_config, split=split)
    num_clips = len(clips)
    heldout_clips: list = []
    if options.recovery is not None:  # held out of everything: statistics, sensitivity and training
        clips, heldout_clips = split_heldout(clips, options.heldout, options.recovery.seed)
    if options.augment_calibration:
        from .augment import CALIBRATION_AUGMENTATION

        rng = np.random.default_rng(0)
        clips = [CALIBRATION_AUGMENTATION(c, rng) for c in clips]
    features = windows(clips, feature_extractor, options.pack_seconds)
    if options.sequential and features.shape[0] < MIN_SEQUENTIAL_SAMPLES:
        warnings.warn(f"sequential calibration on only {features.shape[0]} windows ({num_clips} clips): its "
                      f"regressions can overfit; use >= {MIN_SEQUENTIAL_SAMPLES} windows (more clips, less "
                      "--pack-seconds) or --one-shot", stacklevel=2)
    gains: dict[Key, float] = {}
    chooser = make_chooser(model, features, options, gains)
    shard = distributed.shard(features, options.batch_size)  # this process's windows (all in one process)
    result = compress_encoder(model.get_encoder(), shard, chooser, options)
    result.gains = gains
    lite = build_lite_whisper(model, {k: tuple(t.float() for t in v) for k, v in result.factors.items()})
    if options.recovery is not None:
        result.recovery = run_recovery(model, lite, feature_extractor, clips, heldout_clips, options)
    report = conversion_report(base, model.config, result, options, num_clips, time.time() - start)
    report["calibration_windows"] = features.shape[0]
    report["calibration"] = [asdict(part) for part in parts]  # dataset, language, clips: the mix
    report["calibration_languages"] = sorted({part.language or "unknown" for part in parts})
    report.update(distributed.process_report(shard.shape[0]))
    if not distributed.is_main_process():
        distributed.wait_for_everyone()  # the main process writes the output
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.name}.") as tmp:
        staged = Path(tmp) / "model"
        save_lite_whisper(lite, staged, inputs.base.processor_dir)  # a local folder, even for a Hub id
        (staged / "conversion.json").write_text(json.dumps(report, indent=2) + "\n")
        if output.exists():
            shutil.rmtree(output)
        staged.rename(output)
    distributed.wait_for_everyone()
    return output


def conversion_report(base, config, result: CompressionResult, options: ConversionOptions, num_samples: int,
                      seconds: float) -> dict:
    dense_params = budget_mod.encoder_params(config)
    lite_params = budget_mod.encoder_params(config, result.ranks)
    flops_ratio = budget_mod.encoder_flops(config) / budget_mod.encoder_flops(config, result.ranks)
    layers = config.encoder_layers
    return {
        "base_model": str(base),
        "base_model_sha256": folder_hash(base),
        "method": "lite-whisper " + ("sequential" if options.sequential else "one-shot")
        + (" threshold" if options.threshold else " budget"),
        "options": asdict(options),
        "num_samples": num_samples,
        "low_rank_config": low_rank_config(layers, result.ranks),
        "energy_kept": [{p: round(result.energy[(i, p)], 6) for p in PROJECTIONS} for i in range(layers)],
        "sensitivity": [{p: result.gains.get((i, p)) for p in PROJECTIONS} for i in range(layers)] if result.gains else None,
        "recovery": result.recovery or None,
        "encoder_params": lite_params,
        "encoder_params_original": dense_params,
        "encoder_params_fraction": lite_params / dense_params,
        "encoder_flops_speedup": flops_ratio,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }

"""Conversion, orchestrated: validate, load, calibrate and factorize (a pipeline), recover, save atomically.

Each step lives in its own module: the options (options.py), the input checks (validation.py), the calibration
windows (data/), the rank choice (allocation.py), the way of compressing (pipelines/), recovery (recovery.py),
the LiteWhisper folder (lite_model.py) and conversion.json (report.py).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from transformers import PretrainedConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

from . import distributed
from .augment import CALIBRATION_AUGMENTATION
from .data.calibration_mix import load_calibration_mix
from .data.windows import windows
from .lite_model import save_lite_whisper
from .options import MIN_SEQUENTIAL_SAMPLES, ConversionOptions
from .pipelines import Job, get_pipeline
from .recovery import split_heldout
from .report import conversion_report
from .validation import validate_inputs


def load_base(base: str | Path, device: str = "cpu", dtype: str = "float32"):
    """The base Whisper checkpoint (folder or Hub id); anything that is not a plain Whisper is refused."""
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


def calibration_clips(calibration: str | Sequence[str], options: ConversionOptions, *, config=None,
                      split=None) -> tuple[list, list]:
    """The calibration audio, 16 kHz mono arrays of `options.num_samples` clips, and what each dataset gave
    (CalibrationPart: dataset, language, clips, what pins them). Several datasets are mixed: see calibration_mix."""
    samples, parts = load_calibration_mix(calibration, options.num_samples, config=config, split=split,
                                          text_column=options.text_column, audio_column=options.audio_column,
                                          shuffle_buffer=options.shuffle_buffer, seed=options.seed)
    if not samples:
        raise ValueError(f"no audio found in {calibration!r} (split {split!r})")
    return [s.array for s in samples], parts


def convert(
    base: str | Path,
    output: str | Path,
    calibration: str | Sequence[str],
    options: ConversionOptions,
    *,
    dataset_config: str | None = None,
    split: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert `base` into a LiteWhisper folder at `output`; returns the path. Nothing is left on failure."""
    # Every input checked first, in seconds: a bad base or calibration set must not cost a calibration.
    inputs = validate_inputs(base, output, calibration, options, dataset_config=dataset_config, split=split,
                             overwrite=overwrite)
    output = inputs.output
    start = time.time()
    torch.manual_seed(0)
    model = load_base(base, distributed.setup(options.device), options.dtype)
    feature_extractor = WhisperFeatureExtractor.from_pretrained(base)
    clips, parts = calibration_clips(inputs.calibration, options, config=dataset_config, split=split)
    num_clips = len(clips)
    heldout_clips: list = []
    if options.recovery is not None:  # held out of everything: statistics, sensitivity and training
        clips, heldout_clips = split_heldout(clips, options.heldout, options.recovery.seed)
    if options.augment_calibration:
        rng = np.random.default_rng(0)
        clips = [CALIBRATION_AUGMENTATION(c, rng) for c in clips]
    features = windows(clips, feature_extractor, options.pack_seconds)
    if options.pipeline == "sequential" and features.shape[0] < MIN_SEQUENTIAL_SAMPLES:
        warnings.warn(f"sequential calibration on only {features.shape[0]} windows ({num_clips} clips): its "
                      f"regressions can overfit; use >= {MIN_SEQUENTIAL_SAMPLES} windows (more clips, less "
                      "--pack-seconds) or --one-shot", stacklevel=2)
    job = Job(model, feature_extractor, features, clips, heldout_clips, options)
    lite, result = get_pipeline(options.pipeline).run(job)
    report = conversion_report(base, model.config, result, options, num_clips, time.time() - start)
    report["calibration_windows"] = features.shape[0]
    report["calibration"] = [asdict(part) for part in parts]  # the mix: dataset, language, clips, revision, ids
    report["calibration_languages"] = sorted({part.language or "unknown" for part in parts})
    report.update(distributed.process_report(result.windows))
    if distributed.is_main_process():  # the main process writes the output
        save_lite_whisper(lite, output, inputs.base.processor_dir, overwrite=overwrite,  # a local folder, even
                          extra_files={"conversion.json": json.dumps(report, indent=2) + "\n"})  # for a Hub id
    distributed.wait_for_everyone()
    return output

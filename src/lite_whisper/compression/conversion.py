"""Conversion, orchestrated: validate, load, calibrate and factorize (a pipeline), recover, save atomically.

Each step lives in its own module: the options (options.py), the input checks (validation.py), the calibration
windows (data/), the rank choice (allocation.py), the way of compressing (pipelines/), recovery (recovery.py),
the LiteWhisper folder (lite_model.py) and conversion.json (report.py).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor

from lite_whisper.compression import distributed
from lite_whisper.compression.augment import CALIBRATION_AUGMENTATION
from lite_whisper.compression.lite_model import save_lite_whisper
from lite_whisper.compression.options import MIN_SEQUENTIAL_SAMPLES, ConversionOptions
from lite_whisper.compression.pipelines import Job, get_pipeline
from lite_whisper.compression.quality import CHECK_CLIPS, MAX_CHECK_CLIPS, quality_check
from lite_whisper.compression.recovery import split_heldout
from lite_whisper.compression.report import conversion_report
from lite_whisper.compression.validation import PICKLE_FIX, validate_inputs, whisper_config
from lite_whisper.data.audio import iter_audio_dataset
from lite_whisper.data.calibration_mix import interleave, load_calibration_mix
from lite_whisper.data.clip_checks import check_clips
from lite_whisper.data.windows import windows
from lite_whisper.whisper import use_prompt_flags


def load_base(base: str | Path, device: str = "cpu", dtype: str = "float32", allow_pickle: bool = False):
    """The base Whisper checkpoint (folder or Hub id); anything that is not a plain Whisper is refused. Its
    weights are read from safetensors only, unless `allow_pickle` (validation refuses a .bin-only base first)."""
    whisper_config(base)
    try:
        model = WhisperForConditionalGeneration.from_pretrained(base, dtype=getattr(torch, dtype),
                                                                use_safetensors=None if allow_pickle else True)
    except OSError as err:  # a Hub base without safetensors weights (a local one is refused by validation)
        if allow_pickle:
            raise
        raise ValueError(f"cannot load safetensors weights of {str(base)!r} ({err}): {PICKLE_FIX.format(folder=base)}"
                         ) from err
    use_prompt_flags(model.generation_config)  # a Hub base's forced_decoder_ids: generate() warns about them
    return model.to(device).eval()


@dataclass
class CalibrationAudio:
    """The calibration clips as read and checked, and what they came from."""

    clips: list  # 16 kHz mono arrays, long clips split into 30 s pieces (data/clip_checks.py)
    speakers: list  # the speaker of each clip (None where the dataset does not say): held-out slices take whole ones
    parts: list  # what each dataset gave (CalibrationPart: dataset, language, clips, what pins them)
    report: dict  # the clip checks' report, for conversion.json


def calibration_clips(calibration: str | Sequence[str], options: ConversionOptions, *, config=None,
                      split=None) -> CalibrationAudio:
    """The calibration audio of `options.num_samples` clips, each checked as it is read. Several datasets are
    mixed: see calibration_mix."""
    samples, parts = load_calibration_mix(calibration, options.num_samples, config=config, split=split,
                                          text_column=options.text_column, audio_column=options.audio_column,
                                          shuffle_buffer=options.shuffle_buffer, seed=options.seed,
                                          keep_undecodable=True)
    if not samples:
        raise ValueError(f"no audio found in {calibration!r} (split {split!r})")
    arrays, speakers, report = check_clips(samples, skip_bad=options.skip_bad_clips,
                                           min_clips=options.min_calibration_clips())
    return CalibrationAudio(arrays, speakers, parts, report)


def spare_clips(sources: list, parts: list, count: int, options: ConversionOptions, *, split=None) -> list:
    """Up to `count` usable clips that follow, in each dataset (read as the calibration read it), those the
    calibration took (interleaved like the mix): the quality check's clips when recovery holds none out. Bad ones
    are passed over."""
    groups = []
    for source, part in zip(sources, parts):
        samples = list(iter_audio_dataset(source, split=split, text_column=options.text_column,
                                          audio_column=options.audio_column, shuffle_buffer=options.shuffle_buffer,
                                          seed=options.seed, max_samples=part.clips + count,
                                          keep_undecodable=True))[part.clips:]
        groups.append(samples)
    arrays, _, _ = check_clips(interleave(groups)[:count], skip_bad=True, min_clips=0)
    return arrays[:count]


def _check_language(parts: list) -> str | None:
    """The one language of the calibration datasets, when they declare one (a two-letter code), else None."""
    languages = {part.language for part in parts}
    language = languages.pop() if len(languages) == 1 else None
    return language if isinstance(language, str) and len(language) == 2 else None


def convert(
    base: str | Path,
    output: str | Path,
    calibration: str | Sequence[str] | None,
    options: ConversionOptions,
    *,
    dataset_config: str | None = None,
    split: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert `base` into a LiteWhisper folder at `output`; returns the path. Nothing is left on failure.
    `calibration` None: the default pool (data/pool.py: real English recordings and varied synthesized speech)."""
    # Every input checked first, in seconds: a bad base or calibration set must not cost a calibration.
    inputs = validate_inputs(base, output, calibration, options, dataset_config=dataset_config, split=split,
                             overwrite=overwrite)
    output, options = inputs.output, options.resolved()  # every `auto` choice made, as for every caller
    start = time.time()
    torch.manual_seed(0)
    device = distributed.setup(options.device)
    # Every clip checked as it is read, before the base's weights are loaded (a bad clip costs seconds).
    audio = calibration_clips(inputs.calibration, options, config=dataset_config, split=split)
    clips, parts, audio_report = audio.clips, audio.parts, audio.report
    model = load_base(base, device, options.dtype, options.allow_pickle)
    feature_extractor = WhisperFeatureExtractor.from_pretrained(base)
    num_clips = len(clips)
    heldout_clips: list = []
    if options.trains:  # held out of everything: statistics, sensitivity and training
        clips, heldout_clips = split_heldout(clips, options.heldout, options.seed, audio.speakers)
        # at most MAX_CHECK_CLIPS, spread over the slice (its speakers come in runs): the check transcribes each twice
        step = max(1, -(-len(heldout_clips) // MAX_CHECK_CLIPS))
        quality_clips = heldout_clips[::step]
        check_source = f"{len(quality_clips)} of the {len(heldout_clips)} held-out calibration clips (early stopping's)"
    else:  # clips read after the calibration clips: the statistics stay those of the first --num-samples clips
        quality_clips = spare_clips(inputs.calibration, parts, CHECK_CLIPS, options, split=split)
        check_source = "calibration clips after the first --num-samples (not in the statistics)"
        if not quality_clips:  # the set has no more: the last few calibration clips, seen by the statistics
            quality_clips = clips[-CHECK_CLIPS:]
            check_source = "the last calibration clips (also in the statistics: the set has no spare clips)"
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
    # Before anything is written: a model that no longer transcribes like the original is not kept.
    report["quality_check"] = quality_check(
        model, lite, WhisperProcessor.from_pretrained(inputs.base.processor_dir), quality_clips, source=check_source,
        calibration_clips=audio_report["clips_used"], params_fraction=report["encoder_params_fraction"],
        language=_check_language(parts), allow_degraded=options.allow_degraded, batch_size=options.batch_size)
    report["seconds"] = round(time.time() - start, 1)
    report["calibration_audio"] = audio_report
    report["calibration_windows"] = features.shape[0]
    report["calibration"] = [asdict(part) for part in parts]  # the mix: dataset, language, clips, revision, ids
    report["calibration_languages"] = sorted({part.language or "unknown" for part in parts})
    report.update(distributed.process_report(result.windows))
    if distributed.is_main_process():  # the main process writes the output
        save_lite_whisper(lite, output, inputs.base.processor_dir, overwrite=overwrite,  # a local folder, even
                          extra_files={"conversion.json": json.dumps(report, indent=2) + "\n"})  # for a Hub id
    distributed.wait_for_everyone()
    return output

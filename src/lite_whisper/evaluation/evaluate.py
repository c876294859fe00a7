"""Evaluating a model folder (`lite-whisper eval`): greedy transcripts of a speech set, WER (wer.py), real-time
factor (timing.py: warm, median of runs, interleaved with the original when there is one), encoder size."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from huggingface_hub import snapshot_download
from tqdm.auto import tqdm
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

from lite_whisper.data.audio import dataset_source, is_audiofolder, load_audio_dataset
from lite_whisper.data.hub_datasets import resolve_source

from lite_whisper.evaluation.loading import trust_for
from lite_whisper.loops import is_loop, is_overlong, loop_rate
from lite_whisper.timing import Transcriber, describe, time_transcription, transcribe
from lite_whisper.wer import normalizer_name, word_error_rate
from lite_whisper.whisper import TEMPERATURE_FALLBACK, generate_kwargs, is_english, use_prompt_flags


def encoder_parameter_count(model) -> int:
    """Parameters of the model's encoder (factors included for a LiteWhisper)."""
    return sum(p.numel() for p in model.get_encoder().parameters())


def dense_encoder_parameter_count(model) -> int:
    """Parameters the encoder would have with every low-rank projection dense again (the original's count).

    A low-rank projection is recognized by its `weight1` (d_in x rank) and `weight2` (rank x d_out) factors.
    Whisper's dense `k_proj` has no bias, so a factorized one's bias does not count either."""
    count = encoder_parameter_count(model)
    for name, module in model.get_encoder().named_modules():
        w1, w2 = getattr(module, "weight1", None), getattr(module, "weight2", None)
        if w1 is not None and w2 is not None:
            d_in, d_out = w1.shape[0], w2.shape[1]
            count += d_in * d_out - w1.numel() - w2.numel()
            bias = getattr(module, "bias", None)
            if name.endswith("k_proj") and bias is not None:
                count -= bias.numel()
    return count


def size_on_disk(folder: str | Path) -> tuple[int, int]:
    """(bytes of every file in the folder, bytes of its weight files)."""
    files = [p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith(".")]
    weights = [p for p in files if p.suffix in (".safetensors", ".bin", ".pt", ".pth")]
    return sum(p.stat().st_size for p in files), sum(p.stat().st_size for p in weights)


def without_overlong(predictions: list[str], references: list[str], english: bool, language: str | None) -> dict:
    """The WER without the clips whose transcript is over twice as long as the reference, and their count: a few
    looping clips dominate a corpus WER, and hide how the rest is recognized."""
    keep = [i for i, (p, r) in enumerate(zip(predictions, references)) if not is_overlong(p, r)]
    wer = word_error_rate([predictions[i] for i in keep], [references[i] for i in keep], english=english,
                          language=language) if keep else None
    return {"wer_without_overlong": wer, "overlong_clips": len(predictions) - len(keep)}


def timing_baseline(model_dir: str | Path) -> Path | None:
    """The dense original to time a LiteWhisper folder against: the base recorded in its conversion.json when
    that is a folder here (None for a Whisper, a Hub id, or a base that is not a local folder)."""
    report = Path(model_dir) / "conversion.json"
    if not report.is_file():
        return None
    base = json.loads(report.read_text()).get("base_model")
    return Path(base) if base and Path(base).is_dir() else None


def _load(model_dir: str | Path, trust_remote_code: bool, device: str):
    trust = trust_for(model_dir, trust_remote_code)
    folder = Path(model_dir) if Path(model_dir).is_dir() else Path(snapshot_download(str(model_dir)))
    model = AutoModelForSpeechSeq2Seq.from_pretrained(folder, trust_remote_code=trust, dtype=torch.float32)
    use_prompt_flags(model.generation_config)  # a Hub base's forced_decoder_ids: generate() warns about them
    return folder, model.to(device).eval(), AutoProcessor.from_pretrained(folder, trust_remote_code=trust)


def evaluate_model(
    model_dir: str | Path,
    dataset: str | Path,
    language: str | None = None,
    max_samples: int | None = None,
    batch_size: int = 8,
    *,
    config: str | None = None,
    split: str | None = "test",
    device: str = "cpu",
    label: str | None = None,
    progress: bool = True,
    shuffle_buffer: int = 0,
    seed: int = 42,
    audio_column: str | None = None,
    text_column: str | None = None,
    trust_remote_code: bool = False,
    temperature_fallback: bool = False,
    baseline: str | Path | None = "auto",
    timing_repeats: int = 3,
    timing_clips: int | None = 32,
) -> dict:
    """Transcribe `dataset` with the Whisper or LiteWhisper in `model_dir` and measure it.

    Returns a JSON-ready dict: `wer` (percent, Whisper-normalized; English normalizer for English, basic
    otherwise), `rtf` and `timing` (below), `encoder_params` (and
    `encoder_params_original`, the same encoder dense), `size_on_disk_bytes` / `weights_bytes`, the dataset and
    run settings (a Hub dataset's config, split and revision: its commit sha), and the per-utterance `ids`,
    `references` and `predictions`. A Hub dataset (or parquet folder) is checked before the model loads, then
    streamed; with `shuffle_buffer` > 0 its rows are drawn through `IterableDataset.shuffle(seed=...)`. A Hub
    model id that ships code needs `trust_remote_code` (loading.trust_for); a local folder does not.

    Speed (`timing`, `rtf`): after the transcription pass, the first `timing_clips` clips (None: all) are
    transcribed `timing_repeats` more times, warm, interleaved batch by batch with `baseline` (a dense original
    folder; "auto": the base in the folder's conversion.json when it is a folder here; None: timed alone), and
    `rtf` is the median run's seconds / audio seconds (`timing.time_transcription`), with tokens per clip and
    the encoder's share beside it. timing_repeats=0 skips the timing (`rtf` None).
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    if timing_repeats < 0 or (timing_clips is not None and timing_clips < 1):
        raise ValueError(f"timing_repeats must be >= 0 and timing_clips >= 1, got {timing_repeats}, {timing_clips}")
    if baseline == "auto":
        baseline = timing_baseline(model_dir)
    trust_for(model_dir, trust_remote_code)  # before any data is read
    local = is_audiofolder(dataset, split)
    source = dataset if local else resolve_source(dataset_source(dataset, config, split))  # seconds, no data read
    samples = load_audio_dataset(source, split=split, max_samples=max_samples, shuffle_buffer=shuffle_buffer,
                                 seed=seed, audio_column=audio_column, text_column=text_column)
    samples = [s for s in samples if s.text is not None]
    if not samples:
        raise ValueError(f"{dataset} has no utterance with a transcript: WER needs reference texts")

    folder, model, processor = _load(model_dir, trust_remote_code, device)
    decode_kwargs = generate_kwargs(model, language)
    if temperature_fallback:  # sampling at the higher temperatures: seeded, so that a rerun gives the same text
        decode_kwargs.update(TEMPERATURE_FALLBACK)
        torch.manual_seed(seed)
    arrays = [s.array for s in samples]
    predictions, _ = transcribe(model, processor, arrays, decode_kwargs, batch_size, progress)
    timing = None
    if timing_repeats:
        transcribers = {}
        if baseline is not None:
            _, dense, dense_processor = _load(baseline, trust_remote_code, device)
            dense_kwargs = {**generate_kwargs(dense, language), **(TEMPERATURE_FALLBACK if temperature_fallback else {})}
            transcribers["baseline"] = Transcriber(dense, dense_processor, dense_kwargs)
        transcribers["model"] = Transcriber(model, processor, decode_kwargs)
        timing = time_transcription(transcribers, arrays[:timing_clips], batch_size=batch_size,
                                    repeats=timing_repeats)
        timing["baseline_model"] = None if baseline is None else str(baseline)

    references = [s.text for s in samples]
    english = is_english(model, language)
    audio_seconds = sum(s.duration for s in samples)
    total_bytes, weight_bytes = size_on_disk(folder)
    return {
        "model": str(Path(model_dir).resolve()) if Path(model_dir).is_dir() else str(model_dir),
        "label": label or Path(str(model_dir)).name,
        "model_class": type(model).__name__,
        "low_rank": bool(getattr(model.config, "low_rank_config", None)),
        "dataset": str(Path(dataset).resolve()) if Path(dataset).is_dir() else str(dataset),
        "dataset_name": Path(str(dataset)).name if Path(dataset).is_dir() else str(dataset),
        "dataset_config": None if local else source.config,
        "split": split if local else source.split,
        "revision": None if local else source.revision,
        "shuffle_buffer": None if local else shuffle_buffer,
        "seed": None if local or not shuffle_buffer else seed,
        "language": language,
        "normalizer": normalizer_name(english, language),
        "num_samples": len(samples),
        "wer": word_error_rate(predictions, references, english=english, language=language),
        **without_overlong(predictions, references, english, language),
        "loops": sum(is_loop(p, r) for p, r in zip(predictions, references)),  # decoding loops (loops.py)
        "loop_rate": loop_rate(predictions, references),
        "decoding": "greedy (num_beams=1)" + (", temperature fallback" if temperature_fallback else ""),
        "rtf": timing["model"]["rtf"] if timing else None,  # of the timed clips, median of the timed runs
        "decode_seconds": timing["model"]["median_seconds"] if timing else None,
        "timing": timing,
        "audio_seconds": audio_seconds,
        "encoder_params": encoder_parameter_count(model),
        "encoder_params_original": dense_encoder_parameter_count(model),
        "size_on_disk_bytes": total_bytes,
        "weights_bytes": weight_bytes,
        "device": device,
        "batch_size": batch_size,
        "torch_threads": torch.get_num_threads(),
        "ids": [s.id for s in samples],
        "references": references,
        "predictions": predictions,
    }


def timed_beside(original: dict, lite: dict) -> dict:
    """The original's result with the speed measured in the lite model's evaluation (its `baseline` entry: the
    same interleaved runs), so that a table of the two compares times taken under the same load."""
    timing = lite.get("timing") or {}
    if "baseline" not in timing:
        raise ValueError("the lite model was timed alone: evaluate it with baseline=<the original folder>")
    if Path(str(timing["baseline_model"])).resolve() != Path(str(original["model"])).resolve():
        raise ValueError(f"the lite model was timed against {timing['baseline_model']}, not {original['model']}")
    entry = timing["baseline"]
    shared = {**timing, "model": entry, "baseline": None}
    return {**original, "rtf": entry["rtf"], "decode_seconds": entry["median_seconds"], "timing": shared}


def format_timing(timing: dict | None) -> list[str]:
    """The lines `eval` prints about speed: each model's real-time factor, encoder seconds, tokens per clip."""
    if not timing:
        return ["real-time factor (not timed: --timing-repeats 0)"]
    lines = [f"real-time factor {timing['model']['rtf']:.4f}  (" + describe(timing) + ")"]
    for label in ("baseline", "model"):
        entry = timing.get(label)
        if entry:
            name = "original" if label == "baseline" else "this model"
            lines.append(f"  {name:11s} {entry['median_seconds']:7.2f} s end to end (runs {entry['runs_seconds']}), "
                         f"encoder {entry['encoder_median_seconds']:.2f} s, RTF {entry['rtf']:.4f}, "
                         f"{entry['tokens_per_clip']:.1f} tokens per clip (max {entry['max_tokens_per_clip']}), "
                         f"{entry['decoder_calls']} decoder calls")
    if timing.get("baseline"):
        m = timing["model"]
        lines.append(f"  speedup over the original {m['speedup']:.2f}x end to end (median of per-run ratios "
                     f"{m['speedup_paired']:.2f}x), encoder {m['encoder_speedup']:.2f}x")
    return lines

"""Evaluating a model folder (`lite-whisper eval`): greedy transcripts of a speech set, WER (wer.py), real-time
factor, encoder size."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from huggingface_hub import snapshot_download
from tqdm.auto import tqdm
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

from lite_whisper.data.audio import dataset_source, is_audiofolder, load_audio_dataset
from lite_whisper.data.hub_datasets import resolve_source

from .loading import trust_for
from .loops import is_loop, is_overlong, loop_rate
from .wer import normalizer_name, word_error_rate
from .whisper import TEMPERATURE_FALLBACK, generate_kwargs, is_english, use_prompt_flags


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


def transcribe(model, processor, arrays: list, generate_kwargs: dict, batch_size: int = 8,
               progress: bool = True) -> tuple[list[str], float]:
    """Greedy transcripts of 16 kHz arrays and the seconds spent (features + generate), batch by batch.

    Batches longer than 30 s go through Whisper's sequential long-form decoding (unpadded features + mask)."""
    texts, seconds = [], 0.0
    batches = range(0, len(arrays), batch_size)
    device, dtype = model.device, model.dtype
    for start in tqdm(batches, desc="transcribing", unit="batch", disable=not progress):
        batch = arrays[start:start + batch_size]
        long_form = max(len(a) for a in batch) > 30 * 16_000
        tic = time.perf_counter()
        extra = dict(truncation=False, padding="longest") if long_form else {}
        inputs = processor(batch, sampling_rate=16_000, return_tensors="pt", return_attention_mask=True, **extra)
        with torch.inference_mode():  # the mask drives long-form decoding (and spares a warning on batches)
            tokens = model.generate(inputs.input_features.to(device, dtype),
                                    attention_mask=inputs.attention_mask.to(device), **generate_kwargs)
        seconds += time.perf_counter() - tic
        texts += processor.batch_decode(tokens, skip_special_tokens=True)
    return texts, seconds


def without_overlong(predictions: list[str], references: list[str], english: bool, language: str | None) -> dict:
    """The WER without the clips whose transcript is over twice as long as the reference, and their count: a few
    looping clips dominate a corpus WER, and hide how the rest is recognized."""
    keep = [i for i, (p, r) in enumerate(zip(predictions, references)) if not is_overlong(p, r)]
    wer = word_error_rate([predictions[i] for i in keep], [references[i] for i in keep], english=english,
                          language=language) if keep else None
    return {"wer_without_overlong": wer, "overlong_clips": len(predictions) - len(keep)}


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
) -> dict:
    """Transcribe `dataset` with the Whisper or LiteWhisper in `model_dir` and measure it.

    Returns a JSON-ready dict: `wer` (percent, Whisper-normalized; English normalizer for English, basic
    otherwise), `rtf` (decoding seconds / audio seconds, after one warm-up batch), `encoder_params` (and
    `encoder_params_original`, the same encoder dense), `size_on_disk_bytes` / `weights_bytes`, the dataset and
    run settings (a Hub dataset's config, split and revision: its commit sha), and the per-utterance `ids`,
    `references` and `predictions`. A Hub dataset (or parquet folder) is checked before the model loads, then
    streamed; with `shuffle_buffer` > 0 its rows are drawn through `IterableDataset.shuffle(seed=...)`. A Hub
    model id that ships code needs `trust_remote_code` (loading.trust_for); a local folder does not.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    trust = trust_for(model_dir, trust_remote_code)
    folder = Path(model_dir)
    if not folder.is_dir():
        folder = Path(snapshot_download(str(model_dir)))
    local = is_audiofolder(dataset, split)
    source = dataset if local else resolve_source(dataset_source(dataset, config, split))  # seconds, no data read
    samples = load_audio_dataset(source, split=split, max_samples=max_samples, shuffle_buffer=shuffle_buffer,
                                 seed=seed, audio_column=audio_column, text_column=text_column)
    samples = [s for s in samples if s.text is not None]
    if not samples:
        raise ValueError(f"{dataset} has no utterance with a transcript: WER needs reference texts")

    model = AutoModelForSpeechSeq2Seq.from_pretrained(folder, trust_remote_code=trust, dtype=torch.float32)
    model = model.to(device).eval()
    use_prompt_flags(model.generation_config)  # a Hub base's forced_decoder_ids: generate() warns about them
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=trust)
    decode_kwargs = generate_kwargs(model, language)
    if temperature_fallback:  # sampling at the higher temperatures: seeded, so that a rerun gives the same text
        decode_kwargs.update(TEMPERATURE_FALLBACK)
        torch.manual_seed(seed)
    arrays = [s.array for s in samples]
    # Warm-up on the first clip, in full: a token limit (max_new_tokens) conflicts with the max_length that
    # Whisper's generation config sets, which transformers 5.x warns about on every such call.
    transcribe(model, processor, arrays[:1], decode_kwargs, progress=False)
    predictions, seconds = transcribe(model, processor, arrays, decode_kwargs, batch_size, progress)

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
        "rtf": seconds / audio_seconds,
        "decode_seconds": seconds,
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

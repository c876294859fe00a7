"""Evaluation with the field's tools: `evaluate`'s WER metric after Whisper's text normalizer.

The WER metric ships inside the package (`metrics/wer/wer.py`, the `evaluate` Hub metric) and is loaded by path:
`evaluate.load("wer")` fetches it from the Hub, which fails offline. Texts are normalized as the Whisper paper and
the Open ASR Leaderboard do, with transformers' `EnglishTextNormalizer` (and the English spelling map that the
openai/whisper-* repositories ship as `normalizer.json`), or `BasicTextNormalizer` for other languages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

METRICS_DIR = Path(__file__).parent / "metrics"
WER_METRIC = METRICS_DIR / "wer" / "wer.py"
ENGLISH_SPELLING = METRICS_DIR / "normalizer" / "english.json"


def load_wer_metric():
    """The `evaluate` WER metric, from the copy shipped with this package (works offline)."""
    import evaluate

    return evaluate.load(str(WER_METRIC))


@lru_cache(maxsize=1)
def _english_normalizer():
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    # As WhisperTokenizer.normalize does, with the spelling map it would read from normalizer.json.
    return EnglishTextNormalizer(json.loads(ENGLISH_SPELLING.read_text(encoding="utf-8")))


def spell_numbers(text: str, language: str) -> str:
    """Write the integers of `text` in words of `language` (num2words): "appuyez sur 1" -> "appuyez sur un"."""
    from num2words import num2words

    return re.sub(r"\d+", lambda m: f" {num2words(int(m.group()), lang=language)} ", text)


def spells_numbers(language: str | None) -> bool:
    """Whether numbers can be written out in words in `language` (num2words knows it)."""
    from num2words import CONVERTER_CLASSES

    return bool(language) and language in CONVERTER_CLASSES


def normalizer_name(english: bool, language: str | None = None) -> str:
    """`whisper-english`, `whisper-basic`, or `whisper-basic-LANG` (numbers in words, accents removed)."""
    if english:
        return "whisper-english"
    return f"whisper-basic-{language}" if spells_numbers(language) else "whisper-basic"


def normalize(texts: Sequence[str], english: bool = True, language: str | None = None) -> list[str]:
    """Whisper-normalize texts: lower case, no punctuation, numbers and spellings standardized (English).

    Other languages get Whisper's basic normalizer; with a `language` that num2words knows, numbers are also
    written out in words of that language ("appuyez sur 1" = "appuyez sur un") and accents removed (reference
    transcripts often drop them, e.g. the Spanish Asterisk prompts), so that WER counts recognition errors,
    not formatting."""
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    if isinstance(texts, str):
        raise TypeError("normalize() takes a list of texts; wrap a single text in a list")
    if english:
        return [_english_normalizer()(text) for text in texts]
    if spells_numbers(language):
        basic = BasicTextNormalizer(remove_diacritics=True)
        return [" ".join(basic(spell_numbers(text, language)).split()) for text in texts]
    return [BasicTextNormalizer()(text) for text in texts]


def word_error_rate(predictions: Sequence[str], references: Sequence[str], english: bool = True,
                    language: str | None = None) -> float:
    """Corpus WER in percent (errors over reference words) after Whisper normalization of both sides
    (see `normalize` for `english` and `language`).

    References that normalize to nothing carry no words to score and are left out, as the Open ASR
    Leaderboard does.
    """
    if isinstance(predictions, str) or isinstance(references, str):
        raise TypeError("word_error_rate() takes lists of texts; wrap single texts in lists")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references: they must pair up")
    pairs = [
        (p, r)
        for p, r in zip(normalize(predictions, english, language), normalize(references, english, language))
        if r.strip()
    ]
    if not pairs:
        raise ValueError("no reference has any word left after normalization: nothing to score")
    predictions, references = zip(*pairs)
    return 100.0 * load_wer_metric().compute(predictions=list(predictions), references=list(references))


# --- evaluating a model folder (`lite-whisper eval`) ---------------------------------------------------------------


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


def _is_english(model, language: str | None) -> bool:
    if language is not None:
        return language.lower() in ("en", "english", "<|en|>")
    return not getattr(model.generation_config, "is_multilingual", True)  # English-only Whisper


def _generate_kwargs(model, language: str | None) -> dict:
    if not getattr(model.generation_config, "is_multilingual", True):
        if language is not None and not _is_english(model, language):
            raise ValueError(f"this model is English-only: it cannot transcribe language {language!r}")
        return {}  # English-only models take no language or task tokens
    kwargs = {"task": "transcribe"}
    if language is not None:
        kwargs["language"] = language
    return kwargs


def transcribe(model, processor, arrays: list, generate_kwargs: dict, batch_size: int = 8,
               progress: bool = True) -> tuple[list[str], float]:
    """Greedy transcripts of 16 kHz arrays and the seconds spent (features + generate), batch by batch.

    Batches longer than 30 s go through Whisper's sequential long-form decoding (unpadded features + mask)."""
    import time

    import torch
    from tqdm.auto import tqdm

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


def evaluate_model(
    model_dir: str | Path,
    dataset: str | Path,
    language: str | None = None,
    max_samples: int | None = None,
    batch_size: int = 8,
    *,
    config: str | None = None,
    split: str = "test",
    device: str = "cpu",
    label: str | None = None,
    progress: bool = True,
) -> dict:
    """Transcribe `dataset` with the Whisper or LiteWhisper in `model_dir` and measure it.

    Returns a JSON-ready dict: `wer` (percent, Whisper-normalized; English normalizer for English, basic
    otherwise), `rtf` (decoding seconds / audio seconds, after one warm-up batch), `encoder_params` (and
    `encoder_params_original`, the same encoder dense), `size_on_disk_bytes` / `weights_bytes`, the dataset and
    run settings, and the per-utterance `ids`, `references` and `predictions`.
    """
    import torch
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

    from lite_whisper.audio import load_audio_dataset

    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    folder = Path(model_dir)
    if not folder.is_dir():
        from huggingface_hub import snapshot_download  # a repo id: its files, from the cache or the Hub

        folder = Path(snapshot_download(str(model_dir)))
    samples = load_audio_dataset(dataset, config=config, split=split, max_samples=max_samples)
    samples = [s for s in samples if s.text is not None]
    if not samples:
        raise ValueError(f"{dataset} has no utterance with a transcript: WER needs reference texts")

    model = AutoModelForSpeechSeq2Seq.from_pretrained(folder, trust_remote_code=True, dtype=torch.float32)
    model = model.to(device).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    generate_kwargs = _generate_kwargs(model, language)
    arrays = [s.array for s in samples]
    transcribe(model, processor, arrays[:1], {**generate_kwargs, "max_new_tokens": 1}, progress=False)  # warm-up
    predictions, seconds = transcribe(model, processor, arrays, generate_kwargs, batch_size, progress)

    references = [s.text for s in samples]
    english = _is_english(model, language)
    audio_seconds = sum(s.duration for s in samples)
    total_bytes, weight_bytes = size_on_disk(folder)
    return {
        "model": str(Path(model_dir).resolve()) if Path(model_dir).is_dir() else str(model_dir),
        "label": label or Path(str(model_dir)).name,
        "model_class": type(model).__name__,
        "low_rank": bool(getattr(model.config, "low_rank_config", None)),
        "dataset": str(Path(dataset).resolve()) if Path(dataset).is_dir() else str(dataset),
        "dataset_name": Path(str(dataset)).name if Path(dataset).is_dir() else str(dataset),
        "split": split,
        "language": language,
        "normalizer": normalizer_name(english, language),
        "num_samples": len(samples),
        "wer": word_error_rate(predictions, references, english=english, language=language),
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

"""Honest timings: warm models, run in alternation, medians of several timed runs, and the work each run did.

A single timing of one model says little on a machine that other jobs share, and a cold first call (weights
paged in, kernels chosen, caches filled) or a model that decodes more tokens (a looping clip) changes the time
more than the model's arithmetic does. So every figure this package reports comes from here:
- warm-up calls first, untimed;
- the models run in alternation, the first of each round rotating, so that each sees the same machine load;
- several rounds, and the median of the per-round times (not the first run, not the mean);
- what was measured beside the time: clips, audio seconds, batch size, threads, device, load average, and for
  transcription the decoder steps and tokens per clip (time per clip means little if one model loops) and the
  encoder's share of the same calls (timed by hooks on the encoder inside `generate()`, not by extra runs).

The clock is a parameter (default `time.perf_counter`) so that tests can check which runs a figure comes from.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

Clock = Callable[[], float]


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously); nothing to wait for on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rotations(labels: Sequence[str], rounds: int):
    """The order of each round: every label once, the first rotating (no label always follows another)."""
    labels = list(labels)
    for round_ in range(rounds):
        shift = round_ % len(labels)
        yield labels[shift:] + labels[:shift]


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def time_runs(runs: Mapping[str, Callable[[], object]], device: torch.device, warmup: int = 2, repeats: int = 10,
              *, clock: Clock = time.perf_counter, cpu_clock: Clock = time.process_time) -> dict[str, dict]:
    """Median wall-clock (and, on CPU, process CPU) seconds of each callable, run in alternation after warm-up.

    Returns {label: {"median_ms", "min_ms", "cpu_median_ms" (CPU only), "runs_ms"}}.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    with torch.inference_mode():
        for _ in range(warmup):
            for label in runs:
                runs[label]()
        synchronize(device)
        for order in rotations(runs, repeats):
            for label in order:
                tic, cpu_tic = clock(), cpu_clock()
                runs[label]()
                synchronize(device)
                wall[label].append(clock() - tic)
                cpu[label].append(cpu_clock() - cpu_tic)
    out = {}
    for label in runs:
        out[label] = {"median_ms": 1e3 * statistics.median(wall[label]), "min_ms": 1e3 * min(wall[label]),
                      "runs_ms": [round(1e3 * t, 2) for t in wall[label]]}
        if device.type == "cpu":
            out[label]["cpu_median_ms"] = 1e3 * statistics.median(cpu[label])
    return out


# --- transcription: generate() end to end ---------------------------------------------------------------------------


@dataclass
class Transcriber:
    """What one timed transcription needs: a Whisper-like model, its processor and its generate() arguments."""

    model: torch.nn.Module
    processor: object
    generate_kwargs: dict


class _CallMeter:
    """Seconds spent inside the encoder and decoder calls counted, through forward hooks (so inside generate())."""

    def __init__(self, model: torch.nn.Module, clock: Clock) -> None:
        self.clock, self.device = clock, model.device
        self.encoder_seconds, self.decoder_calls, self._tic = 0.0, 0, None
        encoder, decoder = model.get_encoder(), model.get_decoder()
        self.handles = [encoder.register_forward_pre_hook(self._start), encoder.register_forward_hook(self._stop),
                        decoder.register_forward_hook(self._count)]

    def _start(self, *_) -> None:
        synchronize(self.device)
        self._tic = self.clock()

    def _stop(self, *_) -> None:
        synchronize(self.device)
        self.encoder_seconds += self.clock() - self._tic

    def _count(self, *_) -> None:
        self.decoder_calls += 1

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def _features(processor, batch: list, device: torch.device, dtype: torch.dtype) -> dict:
    """Log-mel features and mask of a batch (unpadded, for long-form decoding, when a clip is over 30 s)."""
    long_form = max(len(a) for a in batch) > 30 * 16_000
    extra = dict(truncation=False, padding="longest") if long_form else {}
    inputs = processor(batch, sampling_rate=16_000, return_tensors="pt", return_attention_mask=True, **extra)
    return {"input_features": inputs.input_features.to(device, dtype), "attention_mask": inputs.attention_mask.to(device)}


def generate_batch(transcriber: Transcriber, batch: list) -> torch.Tensor:
    """Greedy tokens of one batch of 16 kHz arrays: features, then generate() (what a transcription costs)."""
    model = transcriber.model
    inputs = _features(transcriber.processor, batch, model.device, model.dtype)
    with torch.inference_mode():  # the mask drives long-form decoding (and spares a warning on batches)
        return model.generate(**inputs, **transcriber.generate_kwargs)


def text_tokens(tokens: torch.Tensor, processor) -> list[int]:
    """Tokens of each generated sequence that are not special (prompt, end of text, padding)."""
    special = torch.tensor(sorted(processor.tokenizer.all_special_ids), device=tokens.device)
    return (~torch.isin(tokens, special)).sum(dim=1).tolist()


@dataclass
class BatchTiming:
    """One timed batch: seconds end to end, the encoder's seconds within them, decoder calls, text tokens per clip."""

    seconds: float
    encoder_seconds: float
    decoder_calls: int
    tokens: list[int]


def timed_batch(transcriber: Transcriber, batch: list, clock: Clock = time.perf_counter) -> BatchTiming:
    """Features + generate() of one batch, timed, with the encoder's share and the decoder calls (hooks)."""
    meter = _CallMeter(transcriber.model, clock)
    try:
        tic = clock()
        tokens = generate_batch(transcriber, batch)
        synchronize(transcriber.model.device)
        seconds = clock() - tic
    finally:
        meter.close()
    return BatchTiming(seconds, meter.encoder_seconds, meter.decoder_calls, text_tokens(tokens, transcriber.processor))


def time_batches(labels: Sequence[str], arrays: Sequence, run: Callable[[str, list], BatchTiming], *,
                 batch_size: int = 8, repeats: int = 3, warmup: int = 1, what: str = "", device: str = "cpu",
                 threads: int | None = None) -> dict:
    """Time `run(label, batch)` over the batches of `arrays` for each label: warm, in alternation, median of runs.

    One run = every batch once; batches alternate between the labels (the first of each round of batches
    rotating). Per label: the median run seconds and the real-time factor it gives (seconds / audio seconds),
    every run's seconds, the encoder's seconds within the same calls, the decoder calls per run and the text
    tokens per clip. With several labels, the speedup of each over the first (the baseline): the median of
    per-run ratios (both measured within the same round), and the ratio of medians.
    """
    if repeats < 1 or warmup < 0 or batch_size < 1:
        raise ValueError(f"repeats and batch_size must be >= 1 and warmup >= 0, got repeats={repeats}, "
                         f"batch_size={batch_size}, warmup={warmup}")
    if not arrays:
        raise ValueError("no audio to time")
    labels = list(labels)
    batches = [list(arrays[i:i + batch_size]) for i in range(0, len(arrays), batch_size)]
    for _ in range(warmup):
        for label in labels:
            run(label, batches[0])
    runs = {label: [] for label in labels}
    encoder = {label: [] for label in labels}
    calls, tokens = dict.fromkeys(labels, 0), {label: [] for label in labels}
    load_before = load_average()
    for round_, first_order in enumerate(rotations(labels, repeats)):
        totals, encoder_totals = dict.fromkeys(labels, 0.0), dict.fromkeys(labels, 0.0)
        round_calls = dict.fromkeys(labels, 0)
        for b, batch in enumerate(batches):
            shift = b % len(labels)
            for label in first_order[shift:] + first_order[:shift]:
                timing = run(label, batch)
                totals[label] += timing.seconds
                encoder_totals[label] += timing.encoder_seconds
                round_calls[label] += timing.decoder_calls
                if round_ == 0:
                    tokens[label] += timing.tokens
        for label in labels:
            runs[label].append(totals[label])
            encoder[label].append(encoder_totals[label])
            calls[label] = max(calls[label], round_calls[label])  # greedy: the same every run
    audio_seconds = sum(len(a) for a in arrays) / 16_000
    result = {
        "method": (f"{what} end to end (features + encoder + decoder), warm ({warmup} warm-up batch), "
                   f"alternating batch by batch, median of {repeats} runs").strip(),
        "clips": len(arrays), "audio_seconds": audio_seconds, "batch_size": batch_size, "repeats": repeats,
        "warmup": warmup, "device": device, "threads": torch.get_num_threads() if threads is None else threads,
        "load_average": load_before + load_average(),
    }
    for label in labels:
        median = statistics.median(runs[label])
        result[label] = {
            "median_seconds": median, "rtf": median / audio_seconds, "runs_seconds": [round(t, 4) for t in runs[label]],
            "encoder_median_seconds": statistics.median(encoder[label]),
            "decoder_calls": calls[label], "tokens_per_clip": sum(tokens[label]) / len(arrays),
            "max_tokens_per_clip": max(tokens[label]),
        }
    baseline = labels[0]
    for label in labels[1:]:
        pairs = zip(runs[baseline], runs[label])
        result[label]["speedup"] = result[baseline]["median_seconds"] / result[label]["median_seconds"]
        result[label]["speedup_paired"] = statistics.median(b / x for b, x in pairs)
        result[label]["encoder_speedup"] = (result[baseline]["encoder_median_seconds"]
                                            / result[label]["encoder_median_seconds"])
    return result


def time_transcription(transcribers: Mapping[str, Transcriber], arrays: Sequence, *, batch_size: int = 8,
                       repeats: int = 3, warmup: int = 1, clock: Clock = time.perf_counter) -> dict:
    """Time greedy transcription of `arrays` (16 kHz) by each model with generate() (`time_batches`); the
    encoder's seconds are timed by hooks inside the same generate() calls."""
    first = next(iter(transcribers.values())).model
    return time_batches(list(transcribers), arrays, lambda label, batch: timed_batch(transcribers[label], batch, clock),
                        batch_size=batch_size, repeats=repeats, warmup=warmup, what="greedy generate()",
                        device=str(first.device))


def describe(timing: dict) -> str:
    """One line saying what a transcription timing measured."""
    return (f"{timing['method']}; {timing['clips']} clips ({timing['audio_seconds']:.0f} s of audio), batch "
            f"{timing['batch_size']}, {timing['device']}, {timing['threads']} threads; load average "
            f"{timing['load_average'][:3]} -> {timing['load_average'][3:]}")


__all__ = ["BatchTiming", "Clock", "Transcriber", "describe", "generate_batch", "transcribe", "load_average", "rotations",
           "synchronize", "text_tokens", "time_batches", "time_runs", "time_transcription", "timed_batch"]


def transcribe(model, processor, arrays: list, generate_kwargs: dict, batch_size: int = 8,
               progress: bool = True) -> tuple[list[str], float]:
    """Greedy transcripts of 16 kHz arrays and the seconds spent (features + generate), batch by batch: one cold
    pass, for transcripts (speed figures come from `timing.time_transcription`).

    Batches longer than 30 s go through Whisper's sequential long-form decoding (unpadded features + mask)."""
    texts, seconds = [], 0.0
    transcriber = Transcriber(model, processor, generate_kwargs)
    for start in tqdm(range(0, len(arrays), batch_size), desc="transcribing", unit="batch", disable=not progress):
        tic = time.perf_counter()
        tokens = generate_batch(transcriber, arrays[start:start + batch_size])
        seconds += time.perf_counter() - tic
        texts += processor.batch_decode(tokens, skip_special_tokens=True)
    return texts, seconds

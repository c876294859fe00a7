"""The quality check that ends every conversion: does the lite model still transcribe like the original?

Before anything is saved, the lite model and the original transcribe the same clips greedily (clips the
statistics did not see: recovery's held-out slice when recovery runs, otherwise up to CHECK_CLIPS clips read
after the calibration clips; see `convert`). Measured:
- **agreement WER**: the WER of the lite model's transcripts against the original's (not against references:
  calibration needs none), after Whisper's normalizer;
- **looping clips**: clips whose lite transcript loops where the original's does not (loops.is_loop with the
  original's transcript as the reference: over twice as long, or an n-gram repeated beyond what it repeats);
- the clips in which the original hears speech: those whose transcript is neither empty nor what the original
  makes of digital silence (Whisper's hallucination there, " you" for tiny.en). Audio without speech (silence,
  noise, music) calibrates nothing and checks nothing: on 2 s of silence both models say " you" and agree.
The conversion fails (nothing is written) when the agreement WER exceeds MAX_AGREEMENT_WER, any clip loops
where the original does not, or the original hears speech in fewer than MIN_SPEECH_SHARE of the clips;
`--allow-degraded` keeps the model anyway. The figures go into conversion.json (`quality_check`) and the card.

The bound is loose on purpose: it catches broken conversions, not a few points of WER. Measured agreement
WERs of working conversions are far below it (README: "What convert refuses").
"""

from __future__ import annotations

import numpy as np

from lite_whisper.loops import is_loop, words
from lite_whisper.timing import transcribe
from lite_whisper.wer import word_error_rate
from lite_whisper.whisper import generate_kwargs, is_english_only

MAX_AGREEMENT_WER = 50.0
MIN_SPEECH_SHARE = 0.5
CHECK_CLIPS = 4  # clips kept aside for the check when recovery (and its held-out slice) does not run
MAX_CHECK_CLIPS = 32  # of a held-out slice: enough to see loops, each clip transcribed by both models
FEW_CLIPS = 16  # below this many calibration clips, "too little calibration audio" is a likely cause
AGGRESSIVE_FRACTION = 0.6  # below this share of the encoder's parameters, "too aggressive a budget" is one


class QualityCheckFailed(ValueError):
    """The converted model transcribes too differently from the original (the message names likely causes)."""


def measure(original, lite, processor, clips: list, *, language: str | None = None, batch_size: int = 8) -> dict:
    """Greedy transcripts of `clips` by both models, the agreement WER and the loops (see the module doc)."""
    kwargs = generate_kwargs(original, language)
    original.eval()
    lite.eval()
    reference, _ = transcribe(original, processor, clips, kwargs, batch_size, progress=False)
    hypothesis, _ = transcribe(lite, processor, clips, kwargs, batch_size, progress=False)
    [on_silence], _ = transcribe(original, processor, [np.zeros(2 * 16_000, dtype=np.float32)], kwargs, progress=False)
    not_speech = {"", " ".join(words(on_silence))}
    english = is_english_only(original) or (language or "").lower() in ("en", "english")
    original_words = sum(len(words(t)) for t in reference)
    try:
        agreement = word_error_rate(hypothesis, reference, english=english, language=language)
    except ValueError:  # the original transcribed no word at all
        agreement = None
    lite_loops = [is_loop(h, r) for h, r in zip(hypothesis, reference)]
    return {
        "clips": len(clips),
        "agreement_wer": None if agreement is None else round(agreement, 2),
        "looping_clips": sum(lite_loops),
        "loop_rate": round(sum(lite_loops) / max(1, len(clips)), 4),
        "original_looping_clips": sum(is_loop(r) for r in reference),
        "original_words_per_clip": round(original_words / max(1, len(clips)), 2),
        "original_speech_clips": sum(" ".join(words(t)) not in not_speech for t in reference),
        "original_on_silence": on_silence,
        "original": reference,
        "lite": hypothesis,
    }


def judge(figures: dict, *, calibration_clips: int, params_fraction: float) -> tuple[bool, str]:
    """(passed, a sentence saying what failed and its likely causes)."""
    failures, causes = [], []
    if figures["original_speech_clips"] < MIN_SPEECH_SHARE * figures["clips"]:
        failures.append(f"the original model hears speech in only {figures['original_speech_clips']} of "
                        f"{figures['clips']} check clips")
        causes.append("the calibration audio holds no speech (silent, noise or music): calibrate on speech")
    wer = figures["agreement_wer"]
    if wer is not None and wer > MAX_AGREEMENT_WER:
        failures.append(f"its transcripts differ from the original's by {wer:.1f}% (agreement WER, bound "
                        f"{MAX_AGREEMENT_WER:g}%)")
    if figures["looping_clips"]:
        failures.append(f"{figures['looping_clips']} of {figures['clips']} check clips loop where the original's "
                        "transcripts do not")
    if not failures:
        return True, ""
    if calibration_clips < FEW_CLIPS:
        causes.append(f"too little calibration audio ({calibration_clips} clips): raise --num-samples")
    if params_fraction < AGGRESSIVE_FRACTION:
        causes.append(f"too aggressive a budget (the encoder keeps {100 * params_fraction:.0f}% of its parameters): "
                      "raise --target-params, lower --target-speedup or raise --threshold")
    if not causes:
        causes.append("the compression lost too much on this audio: a larger budget or more calibration audio")
    return False, ("quality check failed on " + f"{figures['clips']} clips: " + "; ".join(failures)
                   + ". Likely cause: " + "; or ".join(causes)
                   + ". Nothing was written (pass --allow-degraded to keep the model anyway)")


def quality_check(original, lite, processor, clips: list, *, source: str, calibration_clips: int,
                  params_fraction: float, language: str | None = None, allow_degraded: bool = False,
                  batch_size: int = 8) -> dict:
    """Measure and judge; raise QualityCheckFailed unless it passes or `allow_degraded`. Returns the report
    for conversion.json (`quality_check`)."""
    if not clips:
        raise QualityCheckFailed("no clip is left for the quality check: give more calibration audio")
    figures = measure(original, lite, processor, clips, language=language, batch_size=batch_size)
    passed, message = judge(figures, calibration_clips=calibration_clips, params_fraction=params_fraction)
    report = {"passed": passed, "source": source, **figures,
              "bounds": {"max_agreement_wer": MAX_AGREEMENT_WER, "looping_clips": 0,
                         "min_original_speech_share": MIN_SPEECH_SHARE}}
    if not passed:
        if not allow_degraded:
            raise QualityCheckFailed(message)
        report["failure"] = message.split(". Nothing was written")[0]
        report["kept_by"] = "--allow-degraded"
    return report


__all__ = ["CHECK_CLIPS", "MAX_AGREEMENT_WER", "MAX_CHECK_CLIPS", "QualityCheckFailed", "judge", "measure", "quality_check"]

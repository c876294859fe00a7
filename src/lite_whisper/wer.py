"""WER as the field computes it: `evaluate`'s WER metric after Whisper's text normalizer.

The WER metric ships inside the package (`metrics/wer/wer.py`, the `evaluate` Hub metric) and is loaded by path:
`evaluate.load("wer")` fetches it from the Hub, which fails offline. Texts are normalized as the Whisper paper and
the Open ASR Leaderboard do, with transformers' `EnglishTextNormalizer` (and the English spelling map that the
openai/whisper-* repositories ship as `normalizer.json`), or `BasicTextNormalizer` for other languages, numbers
written in words (num2words) and accents removed.
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

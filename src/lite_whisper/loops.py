"""Decoding loops: the worst failure of a compressed Whisper, which WER alone hides.

A decoder that loops repeats a word or a phrase until the length limit. A hypothesis counts as looping when
  - it is more than twice as long as its reference (and at least `slack` words longer: a one-word reference
    with a three-word hypothesis is a mistake, not a loop), or
  - some n-gram of 2 to `max_n` words repeats back to back at least `min_repeats` times ("i don't know i don't
    know i don't know i don't know"), or a single word (". . . .") twice as many times, and more than the
    reference itself repeats one, or
  - a unit of 1 to 4 characters repeats back to back `CHAR_RUN` times or more inside a word ("Eeeeeee..." for
    hundreds of characters) where the reference has no such run.
Hyphens split words (as Whisper's normalizer does): "M-O-L-L-L-L-..." is a run of one-letter words.
Human speech repeats a word a few times ("no no no", "uh uh uh uh uh uh" in the real-en-mfa transcripts) and a
phrase rarely four times in a row; Whisper's loops run to tens of repeats.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD_EDGES = re.compile(r"^[^\w']+|[^\w']+$")
CHAR_RUN = 16  # "hmmmm", "nooooo" and "uh uh uh" repeat a unit a few times; a decoder's character loop, hundreds
_CHAR_LOOP = re.compile(r"(\S{1,4}?)\1{%d,}" % (CHAR_RUN - 1))  # within a word: spaces never loop


def words(text: str) -> list[str]:
    """Lower-case tokens split at spaces and hyphens; punctuation around words dropped, punctuation-only tokens
    kept (". . ." loops)."""
    out = []
    for token in re.split(r"[\s\-]+", text.lower()):
        if not token:
            continue
        stripped = _WORD_EDGES.sub("", token)
        out.append(stripped or token)
    return out


def longest_repeat(tokens: Sequence[str], max_n: int = 6, min_repeats: int = 4) -> int:
    """The most back-to-back repeats of one n-gram in `tokens`, counting a single word's repeats only from
    2 x `min_repeats` on ("uh uh uh uh uh" and "word word word word" occur in real speech; Whisper's one-word
    loops run to tens). 1 when nothing repeats enough."""
    best = 1
    for n in range(1, max_n + 1):
        for start in range(len(tokens) - 2 * n + 1):
            gram, repeats, at = tokens[start:start + n], 1, start + n
            while tokens[at:at + n] == gram:
                repeats, at = repeats + 1, at + n
            if repeats >= (2 * min_repeats if n == 1 else min_repeats):
                best = max(best, repeats)
    return best


def is_overlong(hypothesis: str, reference: str, slack: int = 5) -> bool:
    """Whether `hypothesis` is over twice as long as `reference` (and `slack` words longer): a loop's mark, and
    what dominates a corpus WER (one 448-token loop costs more errors than a clip has words)."""
    hyp, ref = words(hypothesis), words(reference)
    return len(hyp) > max(2 * len(ref), len(ref) + slack)


def is_loop(hypothesis: str, reference: str | None = None, *, min_repeats: int = 4, max_n: int = 6,
            slack: int = 5) -> bool:
    """Whether `hypothesis` loops: too long against `reference` (when given), or an n-gram repeated back to back
    `min_repeats` times or more (a single word 2 x `min_repeats`), more often than the reference repeats one."""
    hyp = words(hypothesis)
    repeats = longest_repeat(hyp, max_n, min_repeats)
    if reference is None:
        return repeats > 1 or bool(_CHAR_LOOP.search(hypothesis.lower()))
    if is_overlong(hypothesis, reference, slack):
        return True
    if _CHAR_LOOP.search(hypothesis.lower()) and not _CHAR_LOOP.search(reference.lower()):
        return True
    return repeats > longest_repeat(words(reference), max_n, min_repeats)


def loop_rate(hypotheses: Sequence[str], references: Sequence[str] | None = None) -> float:
    """Share of hypotheses (0..1) that loop, against their references when given."""
    if not hypotheses:
        return 0.0
    refs = references if references is not None else [None] * len(hypotheses)
    if len(refs) != len(hypotheses):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(refs)} references: they must pair up")
    return sum(is_loop(h, r) for h, r in zip(hypotheses, refs)) / len(hypotheses)

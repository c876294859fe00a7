"""The loop count: a hypothesis made to repeat is flagged, the reference and ordinary mistakes are not."""

from __future__ import annotations

import json

from conftest import CACHE
from lite_whisper.data import assets
from lite_whisper.loops import is_loop, is_overlong, longest_repeat, loop_rate, words

REFERENCE = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def test_a_repeated_phrase_or_an_overlong_hypothesis_is_a_loop():
    looping = REFERENCE + " for your country" * 6
    assert is_loop(looping, REFERENCE)
    assert is_loop(looping)  # the repetition alone, without a reference
    assert is_loop(" . . . . . . . . . .", "it was a bright cold day")  # the silence loop
    assert is_loop("the man went to the market " * 3, "the man went to the market")  # three times as long
    assert longest_repeat(words("a b c a b c a b c a b c")) == 4
    assert longest_repeat(words("uh uh uh uh uh uh")) == 1  # one word: from 8 repeats on


def test_a_character_loop_is_a_loop():
    """Seen in a compressed tiny.en's quality check: one 'word' of hundreds of characters, and spelled letters."""
    assert is_loop(" E" + "e" * 400, " Hmmmm") and is_loop(" E" + "e" * 400)
    spelled = " M-O-T-L-M-O-L" + "-L" * 200
    assert is_loop(spelled, " The hotel room had a wonderful view of the harbor.") and is_overlong(
        spelled, " The hotel room had a wonderful view of the harbor.")
    assert not is_loop(" Hmmmm", " Hmmmm") and not is_loop(" Nooooooooo!", " No!")  # ten o's: a shout
    assert not is_loop(" M-O-N-T-R-E-A-L", "m o n t r e a l") and words("snow-covered") == ["snow", "covered"]


def test_the_reference_and_ordinary_errors_are_not():
    assert not is_loop(REFERENCE, REFERENCE)
    assert not is_loop("and so my fellow americans ask not what your country can do", REFERENCE)  # cut short
    assert not is_loop("no no no, I said no", "no no no I said no")  # natural repetition (three times)
    assert not is_loop("you", "thank you")
    assert not is_loop("montreal uh uh uh uh uh uh forced aligner", "montreal uh uh uh uh uh uh forced aligner")
    assert loop_rate([REFERENCE, REFERENCE + " do for your" * 8], [REFERENCE, REFERENCE]) == 0.5


def test_no_real_transcript_is_flagged():
    """Every transcript of the real English test clips (human speech: fillers, repetitions) is left alone."""
    folder = assets.real_speech_set("real-en-mini", CACHE)
    texts = [json.loads(line)["text"] for line in (folder / "metadata.jsonl").read_text().splitlines()]
    assert texts and not any(is_loop(t, t) for t in texts)


def test_wer_without_overlong_clips_leaves_out_only_the_overlong_ones():
    from lite_whisper.evaluation.evaluate import without_overlong
    from lite_whisper.wer import word_error_rate

    refs = ["the cat sat on the mat", "a bright cold day in april", "ask not what your country can do"]
    hyps = ["the cat sat on a mat", "a bright cold day " * 6, "ask not what the country can do"]
    result = without_overlong(hyps, refs, english=True, language=None)
    assert result["overlong_clips"] == 1 and is_overlong(hyps[1], refs[1]) and not is_overlong(hyps[0], refs[0])
    assert result["wer_without_overlong"] == word_error_rate([hyps[0], hyps[2]], [refs[0], refs[2]])
    assert result["wer_without_overlong"] < word_error_rate(hyps, refs)

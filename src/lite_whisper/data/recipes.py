"""Named calibration mixes (`--calibration esb`): the datasets, configs, splits and rows of a published recipe,
expanded into the parts that `calibration_mix` interleaves in equal shares.

Names and splits are those of the public dataset cards (checked there, not here: the Hub is out of reach of our
tests): `hf-audio/esb-datasets-test-only-sorted` has one config per ESB set, with a `test` split each, LibriSpeech's
as `test.clean` and `test.other`; `openslr/librispeech_asr` has the configs `clean` (`train.100`, `train.360`) and
`other` (`train.500`) (an assumption from its card, not tested against the Hub).
"""

from __future__ import annotations

from dataclasses import dataclass

from lite_whisper.data.hub_datasets import DatasetSource

ESB = "hf-audio/esb-datasets-test-only-sorted"
ESB_SETS = (("voxpopuli", "test"), ("ami", "test"), ("earnings22", "test"), ("gigaspeech", "test"),
            ("librispeech", "test.clean"), ("librispeech", "test.other"), ("spgispeech", "test"), ("tedlium", "test"))
# ESB-style evaluations read the first rows of each test set: LiteASR calibrates on rows after the first 1000.
ESB_EVALUATED_ROWS = 1000


@dataclass(frozen=True)
class Recipe:
    description: str
    sources: tuple[DatasetSource, ...]


RECIPES = {
    "esb": Recipe("LiteASR's calibration: the eight ESB test sets (voxpopuli, ami, earnings22, gigaspeech, "
                  "librispeech clean and other, spgispeech, tedlium) of " + ESB + ", rows after the first "
                  f"{ESB_EVALUATED_ROWS} of each, seed 42 (the default --seed)",
                  tuple(DatasetSource(ESB, config, split, skip=ESB_EVALUATED_ROWS) for config, split in ESB_SETS)),
    "librispeech": Recipe("LibriSpeech training speech, clean (train.100) and other (train.500) in equal shares, "
                          "from openslr/librispeech_asr",
                          (DatasetSource("openslr/librispeech_asr", "clean", "train.100"),
                           DatasetSource("openslr/librispeech_asr", "other", "train.500"))),
}


def recipe_help() -> str:
    """One line per recipe, for --help."""
    return "; ".join(f"`{name}`: {recipe.description}" for name, recipe in RECIPES.items())

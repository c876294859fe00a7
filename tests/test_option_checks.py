"""Every check of the conversion options refuses its bad value with a message that names the option.

The cases are enumerated against the source: every `raise` in compression/options.py (and in the threshold parser
that `ConversionOptions.validate` calls) must be reached by at least one case below, a check that joins several
conditions with `or` by at least one case per condition, and no two checks may say the same thing. A check added
without a case here fails `test_every_check_in_the_source_is_exercised`.
"""

from __future__ import annotations

import argparse
import ast
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from lite_whisper.compression import options as options_module
from lite_whisper.compression import ranks
from lite_whisper.compression.options import (ConversionOptions, ReconstructionOptions, RecoveryOptions,
                                              seconds_or_auto, switched)

BUDGET = dict(target_params=0.5)  # below 75%: reconstruction on by `auto`, so its checks and the held-out ones run
ITERATIVE = dict(target_params=0.5, recovery=RecoveryOptions())


@dataclass
class Case:
    refused: Callable[[], object]  # raises
    says: str  # a literal part of the message: the option (flag or field) and, where given, its value
    error: type = ValueError


def _validate(**fields) -> Callable[[], None]:
    return lambda: ConversionOptions(**fields).validate()


def _recovery(**fields) -> Callable[[], None]:  # through the conversion's checks, as convert() runs them
    return _validate(**BUDGET, recovery=RecoveryOptions(**fields))


def _reconstruction(**fields) -> Callable[[], None]:
    return _validate(**BUDGET, reconstruction=ReconstructionOptions(**fields))


RECOVERY_COUNTS = "recovery steps must be >= 0, and batch size, eval interval and patience >= 1"
RECONSTRUCTION_COUNTS = "reconstruction epochs must be >= 0 and its batch size >= 1"
MODES = "choose exactly one of --threshold, --target-params, --target-speedup"

CASES = {
    # ConversionOptions.validate
    "no mode": Case(_validate(), MODES),
    "two modes": Case(_validate(threshold="0.9", target_params=0.5), MODES),
    "three modes": Case(_validate(threshold="0.9", target_params=0.5, target_speedup=2.0), MODES),
    "threshold above 1": Case(_validate(threshold="1.5:0.9"), "--threshold '1.5:0.9'"),
    "threshold not a number": Case(_validate(threshold="abc"), "--threshold 'abc'"),
    "threshold of zero energy": Case(_validate(threshold="0:0.5"), "--threshold '0:0.5'"),
    "threshold of three parts": Case(_validate(threshold="0.9:0.9:0.9"), "--threshold '0.9:0.9:0.9'"),
    "target params 0": Case(_validate(target_params=0.0), "--target-params 0.0"),
    "target params above 1": Case(_validate(target_params=1.5), "--target-params 1.5"),
    "target speedup below 1": Case(_validate(target_speedup=0.9), "--target-speedup 0.9"),
    "rank multiple 0": Case(_validate(**BUDGET, rank_multiple=0), "--rank-multiple 0"),
    "no samples": Case(_validate(**BUDGET, num_samples=0), "--num-samples 0"),
    "negative shuffle buffer": Case(_validate(**BUDGET, shuffle_buffer=-1), "--shuffle-buffer -1"),
    "pack seconds above 30": Case(_validate(**BUDGET, pack_seconds=31.0), "--pack-seconds 31.0"),
    "negative pack seconds": Case(_validate(**BUDGET, pack_seconds=-1.0), "--pack-seconds -1.0"),
    "dtype": Case(_validate(**BUDGET, dtype="float64"), "--dtype float64"),
    "reconstruction of another type": Case(_validate(**BUDGET, reconstruction="yes"),
                                           "reconstruction: expected ReconstructionOptions"),
    "recovery of another type": Case(_validate(**BUDGET, recovery=5), "recovery: expected RecoveryOptions"),
    "recovery pack seconds": Case(_validate(**BUDGET, recovery="auto", rounds=2, recovery_pack_seconds=31.0),
                                  "--recovery-pack-seconds 31.0"),  # recovery on by `auto` (iterative)
    "negative recovery pack seconds": Case(_validate(**BUDGET, recovery=RecoveryOptions(), recovery_pack_seconds=-1.0),
                                           "--recovery-pack-seconds -1.0"),
    "held out nothing": Case(_validate(**BUDGET, heldout=0.0), "--heldout 0.0"),
    "held out everything": Case(_validate(**BUDGET, heldout=1.0), "--heldout 1.0"),
    "negative augment copies": Case(_validate(**BUDGET, augment_copies=-1), "--augment-copies -1"),
    # iterative rounds (_validate_rounds, round_budgets, _check_schedule)
    "rounds on a threshold": Case(_validate(threshold="0.9", rounds=2), "--threshold"),
    "rounds without recovery": Case(_validate(target_params=0.5, rounds=2, recovery=None), "--recovery off"),
    "rounds 0 with a schedule": Case(_validate(**ITERATIVE, schedule="0.7,0.5", rounds=0), "--rounds 0"),
    "rounds 0": Case(_validate(**ITERATIVE, rounds=0), "--rounds 0"),
    "schedule not numbers": Case(_validate(**ITERATIVE, schedule="0.8,x"), "--schedule '0.8,x'"),
    "schedule ending elsewhere": Case(_validate(**ITERATIVE, schedule="0.8,0.6"), "must end at the target 0.5"),
    "empty schedule": Case(_validate(**ITERATIVE, schedule=","), "must end at the target 0.5"),
    "schedule growing": Case(_validate(**ITERATIVE, schedule="0.6,0.7,0.5"), "--schedule [0.6, 0.7, 0.5]"),
    "schedule starting dense": Case(_validate(**ITERATIVE, schedule="1.0,0.5"), "--schedule [1.0, 0.5]"),
    "speedup schedule shrinking": Case(_validate(target_speedup=2.0, recovery=RecoveryOptions(),
                                                 schedule="1.5,1.2,2"), "--schedule [1.5, 1.2, 2.0]"),
    # RecoveryOptions.validate
    "recovery steps": Case(_recovery(steps=-1), RECOVERY_COUNTS),
    "recovery batch size": Case(_recovery(batch_size=0), RECOVERY_COUNTS),
    "recovery eval interval": Case(_recovery(eval_every=0), RECOVERY_COUNTS),
    "recovery patience": Case(_recovery(patience=0), RECOVERY_COUNTS),
    "recovery lr": Case(_recovery(lr=0.0), "recovery learning rate (0.0)"),
    "recovery temperature": Case(_recovery(temperature=0.0), "temperature (0.0) must be > 0"),
    "negative CE weight": Case(_recovery(ce_weight=-1.0), "recovery loss weights must be >= 0"),
    "negative KL weight": Case(_recovery(kl_weight=-1.0), "recovery loss weights must be >= 0"),
    "negative MSE weight": Case(_recovery(mse_weight=-1.0), "recovery loss weights must be >= 0"),
    "all loss weights 0": Case(_recovery(ce_weight=0.0, kl_weight=0.0, mse_weight=0.0), "at least one of them > 0"),
    # ReconstructionOptions.validate
    "reconstruction epochs": Case(_reconstruction(epochs=-1), RECONSTRUCTION_COUNTS),
    "reconstruction batch size": Case(_reconstruction(batch_size=0), RECONSTRUCTION_COUNTS),
    "reconstruction lr": Case(_reconstruction(lr=0.0), "reconstruction lr (0.0) must be > 0"),
    "reconstruction ridge": Case(_reconstruction(ridge=-1.0), "ridge (-1.0) >= 0"),
    "padding weight": Case(_reconstruction(padding_weight=1.5), "padding weight (1.5) in [0, 1]"),
    "reconstruction pack seconds": Case(_reconstruction(pack_seconds=31.0), "--reconstruction-pack-seconds 31.0"),
    # the `auto` / on / off switch and the seconds-or-auto flag type
    "switch of another word": Case(lambda: ConversionOptions(**BUDGET, recovery="maybe").resolved(),
                                   "recovery: expected auto, on or off, got 'maybe'"),
    "switch given directly": Case(lambda: switched("yes", RecoveryOptions(), True, "--recovery"),
                                  "--recovery: expected auto, on or off, got 'yes'"),
    "seconds flag": Case(lambda: seconds_or_auto("long", "--pack-seconds"), "--pack-seconds 'long'",
                         error=argparse.ArgumentTypeError),
}


def _raised_at(refused: Callable[[], object], error: type) -> tuple[BaseException, tuple[str, int]]:
    """The exception and where it was raised (file name, line of the innermost frame)."""
    with pytest.raises(error) as info:
        refused()
    tb = info.value.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return info.value, (Path(tb.tb_frame.f_code.co_filename).name, tb.tb_lineno)


@pytest.mark.parametrize("name", list(CASES))
def test_each_bad_option_is_refused_naming_it(name):
    case = CASES[name]
    error, _ = _raised_at(case.refused, case.error)
    assert case.says in str(error), (name, str(error))


def _checks_in_source() -> dict[tuple[str, int, int], tuple[int, str]]:
    """(file, first line, last line) of every `raise` in options.py and in ranks.parse_threshold -> (how many
    conditions its `if` joins with `or`, 1 otherwise; the constant text of its message)."""
    checks = {}
    lines, start = inspect.getsourcelines(ranks.parse_threshold)
    sources = ((inspect.getsource(options_module), 1, "options.py"), ("".join(lines), start, "ranks.py"))
    for text, offset, file in sources:
        for node in ast.walk(ast.parse(text)):
            for child in ast.iter_child_nodes(node):
                if not isinstance(child, ast.Raise):
                    continue
                test = node.test if isinstance(node, ast.If) and child in node.body else None
                conditions = len(test.values) if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or) else 1
                message = "".join(n.value for n in ast.walk(child.exc)
                                  if isinstance(n, ast.Constant) and isinstance(n.value, str))
                checks[(file, child.lineno + offset - 1, child.end_lineno + offset - 1)] = (conditions, message)
    return checks


def test_every_check_in_the_source_is_exercised():
    checks = _checks_in_source()
    assert len(checks) >= 20  # the parse found the checks (options.py held 23 raises when this test was written)
    hits: dict[tuple[str, int, int], list[str]] = {check: [] for check in checks}
    for name, case in CASES.items():
        error, (file, line) = _raised_at(case.refused, case.error)
        found = [check for check in checks if check[0] == file and check[1] <= line <= check[2]]
        assert found, f"case {name!r} was refused outside the checks ({file}:{line}): {error}"
        hits[found[0]].append(name)
    missed = [check for check, names in hits.items() if not names]
    assert not missed, f"checks without a case here: {missed}"
    short = {check: names for check, names in hits.items() if len(names) < checks[check][0]}
    assert not short, f"checks joining conditions with `or` need a case per condition: {short}"
    # Each check says something of its own: a refusal is told apart by its message alone.
    messages = [message for _, message in checks.values()]
    assert len(set(messages)) == len(messages), messages


@pytest.mark.parametrize("fields", [
    dict(target_params=1.0), dict(target_speedup=1.0), dict(threshold="1"), dict(threshold="0.5:1"),
    dict(**BUDGET, pack_seconds=0.0), dict(**BUDGET, pack_seconds=30.0), dict(**BUDGET, shuffle_buffer=0),
    dict(**BUDGET, rank_multiple=1, num_samples=1), dict(**BUDGET, heldout=0.01, augment_copies=0),
    dict(**BUDGET, recovery=RecoveryOptions(steps=0, ce_weight=0.0, kl_weight=0.0, mse_weight=1.0),
         recovery_pack_seconds=30.0),
    dict(**BUDGET, recovery=RecoveryOptions(), recovery_pack_seconds=0.0),
    dict(**BUDGET, reconstruction=ReconstructionOptions(epochs=0, ridge=0.0, padding_weight=0.0, pack_seconds=0.0)),
    dict(**BUDGET, reconstruction=ReconstructionOptions(padding_weight=1.0, pack_seconds=30.0)),
    dict(**ITERATIVE, schedule="0.9,0.5"), dict(**ITERATIVE, rounds=1, schedule="0.5"),
    dict(target_speedup=2.0, recovery=RecoveryOptions(), schedule="1.5,2"),
    dict(threshold="0.9", heldout=0.0, recovery=None),  # nothing trains: the held-out share is not used
])
def test_the_edges_of_each_range_are_accepted(fields):
    ConversionOptions(**fields).validate()


@pytest.mark.parametrize("word", ["auto", "on", "off"])
def test_validate_accepts_every_word_that_resolved_does(word):
    options = ConversionOptions(**BUDGET, reconstruction=word, recovery=word)
    options.validate()  # what `resolved` accepts is not refused before it
    resolved = options.resolved()
    assert (resolved.recovery is None) == (word == "off" or (word == "auto" and not options.recovers_by_default()))
    assert (resolved.reconstruction is None) == (word == "off")  # BUDGET reconstructs by default

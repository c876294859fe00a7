"""Recovery (distillation through the frozen decoder) on the real tiny.en and synthesized speech.

The student is tiny.en with every encoder projection cut by exact SVD (no calibration needed, so the tests are
fast): a genuinely damaged encoder whose decoder is the teacher's. Training windows, held-out windows and the
WER test clips are three disjoint sets of utterances.
"""

from __future__ import annotations

import pytest
import torch

from lite_whisper.compression.lite_model import build_lite_whisper, svd_factors
from lite_whisper.compression.options import ConversionOptions, RecoveryOptions
from lite_whisper.compression.recovery import distillation_set, pseudo_labels, recover
from lite_whisper.modeling import LowRankLinear

import modeling_support as support

RANKS = {"q_proj": 48, "k_proj": 48, "v_proj": 64, "out_proj": 64, "fc1": 96, "fc2": 96}


def _student(tiny_en_dir):
    teacher = support.whisper(tiny_en_dir)
    return build_lite_whisper(teacher, svd_factors(teacher, [dict(RANKS)] * teacher.config.encoder_layers)).eval()


def _windows(tiny_en_dir, folder, indices):
    teacher, extractor = support.whisper(tiny_en_dir), support.processor(tiny_en_dir).feature_extractor
    clips = [support.speech(folder)[i][0] for i in indices]
    labels = pseudo_labels(teacher, extractor, clips, progress=False)
    return distillation_set(teacher, extractor, clips, labels, progress=False)


@pytest.fixture(scope="module")
def data(tiny_en_dir, speech_calibration_dir):
    """(training windows, held-out windows) from disjoint calibration clips."""
    return _windows(tiny_en_dir, speech_calibration_dir, range(8)), _windows(tiny_en_dir, speech_calibration_dir,
                                                                              range(8, 12))


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_pseudo_labels_are_the_teachers_transcripts(tiny_en_dir, data):
    train, _ = data
    teacher, processor = support.whisper(tiny_en_dir), support.processor(tiny_en_dir)
    config = teacher.generation_config
    assert train.tokens.shape[0] == len(train) and train.targets.shape[:2] == (len(train), 1500)
    for row, length in zip(train.tokens, train.lengths):
        row = row[:length].tolist()
        assert row[:2] == [config.decoder_start_token_id, config.no_timestamps_token_id] and row[-1] == config.eos_token_id
    with torch.no_grad():
        greedy = teacher.generate(train.features[:1])
    assert processor.decode(train.tokens[0, 2 : train.lengths[0] - 1]) == processor.batch_decode(
        greedy, skip_special_tokens=True)[0]


def test_recovery_trains_only_the_factors_and_lowers_the_loss(tiny_en_dir, data):
    train, heldout = data
    teacher = support.whisper(tiny_en_dir)
    teacher_before, student = _state(teacher), _student(tiny_en_dir)
    before, flags = _state(student), {k: p.requires_grad for k, p in student.named_parameters()}
    options = RecoveryOptions(steps=12, batch_size=2, lr=1e-3, eval_every=4, patience=10, warmup=2)
    report = recover(student, train, heldout, options, progress=False)
    after = _state(student)
    factor_names = {f"{name}.{p}" for name, m in student.named_modules() if isinstance(m, LowRankLinear)
                    for p in ("weight1", "weight2", "bias")}
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= factor_names
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_before.items())  # teacher untouched
    first, last = report["train_loss"][0][1], report["train_loss"][-1][1]
    assert last < first, report["train_loss"]
    assert report["heldout_loss_best"] < report["heldout_loss"][0][1]
    assert flags == {k: p.requires_grad for k, p in student.named_parameters()}  # given back as they were


def test_training_norms_gives_the_student_its_own_tensors(tiny_en_dir, data):
    train, heldout = data
    teacher = support.whisper(tiny_en_dir)
    teacher_before, student = _state(teacher), _student(tiny_en_dir)
    recover(student, train, heldout, RecoveryOptions(steps=4, batch_size=2, lr=1e-3, eval_every=2, warmup=1,
                                                     train_norms=True), progress=False)
    after = student.state_dict()
    assert not torch.equal(after["model.encoder.layers.0.self_attn_layer_norm.weight"],
                           teacher_before["model.encoder.layers.0.self_attn_layer_norm.weight"])
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_before.items())
    assert all(torch.equal(after[k], teacher_before[k]) for k in after if k.startswith(("model.decoder", "proj_out")))


def test_early_stopping_on_the_heldout_slice_keeps_the_best_state(tiny_en_dir, data):
    """A learning rate far too high makes the held-out loss rise: training stops after `patience` evaluations
    without improvement, and the student is given back as it was at the best evaluation."""
    from lite_whisper.compression.recovery import heldout_loss

    train, heldout = data
    student = _student(tiny_en_dir)
    options = RecoveryOptions(steps=60, batch_size=2, lr=0.05, warmup=1, eval_every=2, patience=2)
    report = recover(student, train, heldout, options, progress=False)
    assert report["stopped_early"] and report["steps_run"] < options.steps
    assert report["steps_run"] == report["best_step"] + options.patience * options.eval_every
    assert heldout_loss(student, heldout, options) == pytest.approx(report["heldout_loss_best"], rel=1e-4)


@pytest.mark.long  # over a minute: `make test-long`
def test_same_seed_same_factors(tiny_en_dir, data):
    train, heldout = data
    options = RecoveryOptions(steps=3, batch_size=2, lr=1e-3, warmup=1, eval_every=3)
    first, second = _student(tiny_en_dir), _student(tiny_en_dir)
    recover(first, train, heldout, options, progress=False)
    recover(second, train, heldout, options, progress=False)
    a, b = first.state_dict(), second.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def _greedy_wer(model, tiny_en_dir, folder, count: int) -> float:
    from lite_whisper.wer import word_error_rate

    clips = support.speech(folder)[:count]
    processor = support.processor(tiny_en_dir)
    features = processor([a for a, _ in clips], sampling_rate=16_000, return_tensors="pt").input_features
    with torch.no_grad():
        tokens = model.generate(features, num_beams=1)
    return word_error_rate(processor.batch_decode(tokens, skip_special_tokens=True), [t for _, t in clips])


@pytest.mark.long  # over a minute: `make test-long`
def test_recovery_lowers_wer_on_unseen_speech(tiny_en_dir, data, speech_test_dir):
    """Against the same ranks without recovery, on test utterances disjoint from the training and held-out
    windows (greedy). Measured here: 97.97 -> 91.22 (this exact-SVD student is badly damaged; the bound
    leaves room for other thread counts' rounding)."""
    train, heldout = data
    student = _student(tiny_en_dir)
    before = _greedy_wer(student, tiny_en_dir, speech_test_dir, 12)
    recover(student, train, heldout, RecoveryOptions(steps=40, batch_size=2, lr=1e-3, warmup=4, eval_every=10,
                                                     patience=2), progress=False)
    after = _greedy_wer(student, tiny_en_dir, speech_test_dir, 12)
    print(f"tiny.en SVD-cut student, greedy WER on 12 unseen clips: {before:.2f} -> {after:.2f} with recovery")
    assert after <= before - 2.0, (before, after)


@pytest.mark.long  # over a minute: `make test-long`
def test_convert_with_recovery_records_it_and_keeps_the_heldout_clips_out(tiny_en_dir, speech_calibration_dir,
                                                                            tmp_path):
    """The whole conversion: the held-out clips stay out of the statistics, and conversion.json holds the
    recovery's curves, its stopping step and the held-out loss."""
    import json

    from lite_whisper.compression.conversion import convert
    from lite_whisper.compression.options import ConversionOptions, ReconstructionOptions

    recovery = RecoveryOptions(steps=4, batch_size=2, warmup=1, eval_every=2)
    reconstruction = ReconstructionOptions(epochs=1, batch_size=2, pack_seconds=10)
    options = ConversionOptions(target_params=0.6, num_samples=8, batch_size=4, allocation_samples=4,
                                probe_samples=2, reconstruction=reconstruction, recovery=recovery, heldout=0.25,
                                augment_copies=1, pack_seconds=0)  # one window per training clip: 6
    out = convert(tiny_en_dir, tmp_path / "lite", str(speech_calibration_dir), options)
    report = json.loads((out / "conversion.json").read_text())
    rec = report["recovery"]
    assert (rec["heldout_clips"], rec["train_clips"]) == (2, 6)
    assert report["calibration_windows"] == 6  # statistics from the training clips only
    assert [step for step, _ in rec["heldout_loss"]] == [0, 2, 4] and rec["steps_run"] == 4
    assert rec["best_step"] in (0, 2, 4) and rec["heldout_loss_best"] == min(v for _, v in rec["heldout_loss"])
    assert rec["train_windows"] >= 1 and rec["options"]["steps"] == 4
    blocks = report["reconstruction"]  # before recovery, on the same training and held-out clips
    assert len(blocks["layers"]) == 4 and blocks["heldout_windows"] >= 1 and blocks["options"]["epochs"] == 1
    assert all(layer["heldout_error"][layer["best_epoch"]] <= layer["heldout_error_start"] + 1e-9
               for layer in blocks["layers"])


@pytest.mark.parametrize("flags, reconstruction, recovery, sequential, pack", [
    (["--target-params", "0.5"], True, False, False, 15),  # auto: reconstruction below 75%, one-shot fits, packed
    (["--target-params", "0.5", "--sequential"], True, False, True, 0),  # the regressions need many windows
    (["--target-params", "0.84"], False, False, False, 15),
    (["--threshold", "0.99:0.999"], False, False, False, 0),  # LiteASR's method as published: never auto-trained
    (["--target-params", "0.5", "--rounds", "2"], True, True, False, 15),  # iterative rounds recover between rounds
])
def test_convert_flags_resolve_like_the_python_api(flags, reconstruction, recovery, sequential, pack):
    """`lite-whisper convert` and `convert()` in Python resolve the same pipeline, reconstruction and recovery for
    the same options (one default everywhere: ConversionOptions.resolved)."""
    from lite_whisper import cli
    from lite_whisper.cli import commands

    args = cli.build_parser().parse_args(["convert", "base", "--output", "out", "--calibration", "data", *flags])
    from_cli = cli.conversion_options(args).resolved()
    given = {"threshold": "0.99:0.999"} if "--threshold" in flags else {"target_params": float(flags[1])}
    from_python = ConversionOptions(**given, sequential=True if "--sequential" in flags else None,
                                    rounds=2 if "--rounds" in flags else 1).resolved()
    assert from_cli == from_python
    if flags[0] == "--target-params" and len(flags) == 2:  # the demo and bench-compression run a bare budget
        from lite_whisper.benchmarks.demo import demo_options

        assert demo_options(float(flags[1])).resolved() == from_cli
        bench = cli.build_parser().parse_args(["bench-compression", "--thresholds", "--targets", flags[1]])
        [original, budget] = commands.bench_compression_variants(bench)
        assert original.options is None and budget.options.resolved() == from_cli
        assert bench.calibration is None  # convert's own calibration: the pool
    pipeline = "iterative" if "--rounds" in flags else "sequential" if sequential else "oneshot"
    assert (from_cli.pipeline, from_cli.trains) == (pipeline, reconstruction or recovery)
    assert (from_cli.reconstruction is not None, from_cli.recovery is not None) == (reconstruction, recovery)
    assert from_cli.pack_seconds == pack


@pytest.mark.parametrize("value, resolved", [("auto", 15.0), ("28", 28.0), ("0", 0.0)])
def test_pack_seconds_auto_or_given(value, resolved):
    """`--pack-seconds` takes seconds or `auto`; a given value is kept as given, even where auto would not pack."""
    from lite_whisper import cli

    for mode, auto in ((["--target-params", "0.7"], 15.0), (["--threshold", "0.99:0.999"], 0.0)):
        args = cli.build_parser().parse_args(["convert", "base", "--output", "out", *mode, "--pack-seconds", value])
        assert cli.conversion_options(args).resolved().pack_seconds == (auto if value == "auto" else resolved)


def test_a_bad_pack_seconds_is_refused_with_its_flag(capsys):
    from lite_whisper import cli

    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["convert", "base", "--output", "o", "--target-params", "0.7",
                                       "--pack-seconds", "long"])
    assert "--pack-seconds 'long': expected seconds (e.g. 15) or auto" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--pack-seconds 31.0: expected 0"):
        ConversionOptions(target_params=0.7, pack_seconds=31.0).validate()


@pytest.mark.parametrize("flags, reconstruction, recovery", [
    (["--target-params", "0.5", "--recovery", "on"], True, True),
    (["--target-params", "0.5", "--reconstruction", "off"], False, False),
    (["--threshold", "0.99:0.999", "--recovery", "on", "--recovery-pack-seconds", "0"], False, True),
    (["--target-params", "0.84", "--reconstruction", "on", "--reconstruction-epochs", "2"], True, False),
])
def test_convert_flags_switch_each_step(flags, reconstruction, recovery):
    from lite_whisper import cli

    args = cli.build_parser().parse_args(["convert", "base", "--output", "out", "--calibration", "data", *flags])
    options = cli.conversion_options(args).resolved()
    assert (options.reconstruction is not None, options.recovery is not None) == (reconstruction, recovery)
    if recovery:
        assert options.recovery_pack_seconds == (0 if "--recovery-pack-seconds" in flags else 28)
    if reconstruction:
        assert options.reconstruction.epochs == (2 if "--reconstruction-epochs" in flags else 4)

"""Recovery (distillation through the frozen decoder) on the real tiny.en and synthesized speech.

The student is tiny.en with every encoder projection cut by exact SVD (no calibration needed, so the tests are
fast): a genuinely damaged encoder whose decoder is the teacher's. Training windows, held-out windows and the
WER test clips are three disjoint sets of utterances.
"""

from __future__ import annotations

import math

import numpy as np
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


# --- the loss, term by term --------------------------------------------------------------------------------


def _reference_terms(student, teacher, batch, temperature: float) -> dict[str, float]:
    """CE, T^2 KL(teacher || student) and encoder MSE of a batch, from the two whole models' forward passes (not
    from the shared decoder that distillation_loss reuses), summed by hand over the predicted positions."""
    features, _, tokens, lengths = batch
    inputs, labels = tokens[:, :-1], tokens[:, 1:]
    positions = [(row, i) for row in range(len(tokens)) for i in range(int(lengths[row]) - 1)]
    with torch.no_grad():
        s_logits = student(input_features=features, decoder_input_ids=inputs).logits.double()
        t_logits = teacher(input_features=features, decoder_input_ids=inputs).logits.double()
        s_enc = student.get_encoder()(features).last_hidden_state.double()
        t_enc = teacher.get_encoder()(features).last_hidden_state.double()
    ce = sum(-torch.log_softmax(s_logits[r, i], -1)[labels[r, i]] for r, i in positions) / len(positions)
    t = temperature
    kl = sum((torch.softmax(t_logits[r, i] / t, -1) * (torch.log_softmax(t_logits[r, i] / t, -1)
                                                       - torch.log_softmax(s_logits[r, i] / t, -1))).sum()
             for r, i in positions) * t * t / len(positions)
    return {"ce": float(ce), "kl": float(kl), "mse": float(((s_enc - t_enc) ** 2).mean())}


def test_each_loss_term_is_what_it_states_and_weighs_as_given(tiny_en_dir, data):
    from lite_whisper.compression.recovery import distillation_loss

    train, _ = data
    teacher, student = support.whisper(tiny_en_dir), _student(tiny_en_dir)
    batch = train.batch(torch.arange(2))
    for temperature in (2.0, 1.0):
        expected = _reference_terms(student, teacher, batch, temperature)
        assert min(expected.values()) > 0
        weights = dict(ce_weight=0.8, kl_weight=1.0, mse_weight=0.5)
        total, parts = distillation_loss(student, batch, RecoveryOptions(**weights, temperature=temperature))
        assert parts == pytest.approx(expected, rel=1e-4)
        stated = 0.8 * expected["ce"] + expected["kl"] + 0.5 * expected["mse"]
        assert float(total.detach()) == pytest.approx(stated, rel=1e-4)
        for off in ("ce", "kl", "mse"):  # a weight of 0 removes its term, the others keep theirs
            options = RecoveryOptions(**{**weights, f"{off}_weight": 0.0}, temperature=temperature)
            total, parts = distillation_loss(student, batch, options)
            assert set(parts) == {"ce", "kl", "mse"} - {off}
            kept = sum(getattr(options, f"{k}_weight") * expected[k] for k in parts)
            assert float(total.detach()) == pytest.approx(kept, rel=1e-4)
        doubled, _ = distillation_loss(student, batch, RecoveryOptions(ce_weight=1.6, kl_weight=0.0,
                                                                       temperature=temperature))
        assert float(doubled.detach()) == pytest.approx(1.6 * expected["ce"], rel=1e-4)
    assert _reference_terms(student, teacher, batch, 2.0)["kl"] != pytest.approx(expected["kl"], rel=1e-2)


def test_the_learning_rate_warms_up_then_decays_to_a_tenth_at_the_last_step(tiny_en_dir, data):
    """Read from the optimizer at each step of a real run (a global step hook, nothing replaced): linear warm-up
    to the peak over `warmup` steps, then cosine from the peak down to a tenth of it at the last step."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from lite_whisper.compression.recovery import DistillationSet

    train, heldout = data
    one_heldout = DistillationSet(*(t[:1] for t in (heldout.features, heldout.targets, heldout.tokens,
                                                    heldout.lengths)))
    options = RecoveryOptions(steps=7, warmup=3, lr=2e-4, batch_size=1, eval_every=7, patience=1)
    seen = []
    handle = register_optimizer_step_pre_hook(lambda optimizer, *_: seen.append(optimizer.param_groups[0]["lr"]))
    try:
        report = recover(_student(tiny_en_dir), train, one_heldout, options, progress=False)
    finally:
        handle.remove()
    assert report["steps_run"] == options.steps
    peak, floor, decay_steps = options.lr, options.lr / 10, options.steps - 1 - options.warmup
    warm = [peak * (i + 1) / options.warmup for i in range(options.warmup)]
    decay = [floor + (peak - floor) * (1 + math.cos(math.pi * i / decay_steps)) / 2 for i in range(decay_steps + 1)]
    assert seen == pytest.approx(warm + decay, rel=1e-12)
    assert seen[options.warmup - 1] == seen[options.warmup] == pytest.approx(peak)  # the peak, reached
    assert seen[-1] == pytest.approx(peak / 10) and seen[0] == pytest.approx(peak / options.warmup)


# --- from a realistic start ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pca_student(tiny_en_dir, data):
    """tiny.en at 70% of its encoder's parameters as a conversion makes it: ranks allocated by sensitivity, one-shot
    PCA on the training windows (not a ruined model: the quality check would pass it)."""
    from lite_whisper.compression.allocation import make_chooser
    from lite_whisper.compression.pipelines import OneShotPipeline

    train, _ = data
    teacher = support.whisper(tiny_en_dir)
    options = ConversionOptions(target_params=0.7, allocation_samples=8, probe_samples=2, batch_size=4)
    chooser = make_chooser(teacher, train.features, options, {})
    result = OneShotPipeline().compress(teacher.get_encoder(), train.features, chooser, options.batch_size)
    student = build_lite_whisper(teacher, {k: tuple(t.float() for t in v) for k, v in result.factors.items()})
    return student.eval(), result.ranks


def test_heldout_loss_falls_from_a_pca_student_at_70_percent(tiny_en_dir, speech_calibration_dir, data, pca_student):
    """The defaults' learning rate (1e-4) from a student that transcribes much as the original does (measured here:
    token error rate 10.9% against the original on the held-out clips, held-out loss 0.531 -> 0.502 -> 0.480 in
    4 steps): the held-out loss falls at every evaluation, not only from a 98%-WER start."""
    from lite_whisper.compression.budget import encoder_params
    from lite_whisper.compression.pipelines.iterative import agreement
    from lite_whisper.compression.quality import MAX_AGREEMENT_WER
    from lite_whisper.compression.recovery import heldout_loss

    train, heldout = data
    student, ranks = pca_student
    teacher, extractor = support.whisper(tiny_en_dir), support.processor(tiny_en_dir).feature_extractor
    config = teacher.config
    assert encoder_params(config, ranks) / encoder_params(config) == pytest.approx(0.7, abs=0.01)
    clips = [support.speech(speech_calibration_dir)[i][0] for i in range(8, 12)]  # the held-out windows' clips
    start = agreement(student, pseudo_labels(teacher, extractor, clips, progress=False), extractor, clips)
    assert start["looping_clips"] == 0 and start["token_error_rate_vs_original"] <= MAX_AGREEMENT_WER / 2, start

    options = RecoveryOptions(steps=4, batch_size=2, warmup=1, eval_every=2, patience=2)
    assert options.lr == RecoveryOptions().lr
    report = recover(student, train, heldout, options, progress=False)
    print(f"tiny.en at 70% (PCA): agreement {start['token_error_rate_vs_original']}%, held-out loss "
          f"{report['heldout_loss']}")
    [(_, first), *later] = report["heldout_loss"]
    assert [step for step, _ in later] == [2, 4]
    assert all(loss < first for _, loss in later), report["heldout_loss"]
    assert report["heldout_loss_best"] <= 0.97 * first and report["best_step"] > 0
    assert heldout_loss(student, heldout, options) == pytest.approx(report["heldout_loss_best"], rel=1e-4)


# --- a multilingual teacher ---------------------------------------------------------------------------------


def test_multilingual_labels_carry_the_detected_language_and_windows_never_mix_prompts(base_dir,
                                                                                       speech_calibration_dir):
    """Whisper base (multilingual): each pseudo-label's prompt is <|startoftranscript|> <|en|> <|transcribe|>
    <|notimestamps|> (the language detected on English speech), its text what generate() transcribes in English;
    packed windows join only clips of one prompt, and the loss includes predicting the language token."""
    from lite_whisper.compression.recovery import Transcript, distillation_loss, heldout_loss

    teacher, processor = support.whisper(base_dir), support.processor(base_dir)
    config = teacher.generation_config
    clips = [support.speech(speech_calibration_dir)[i][0] for i in range(3)]
    labels = pseudo_labels(teacher, processor.feature_extractor, clips, progress=False)
    start, nots = config.decoder_start_token_id, config.no_timestamps_token_id
    transcribe = config.task_to_id["transcribe"]
    english, german = (config.lang_to_id[f"<|{code}|>"] for code in ("en", "de"))
    assert [label.prompt for label in labels] == [(start, english, transcribe, nots)] * 3
    features = processor(clips, sampling_rate=16_000, return_tensors="pt").input_features
    with torch.no_grad():
        greedy = teacher.generate(features, language="en", task="transcribe", num_beams=1)
    transcripts = processor.batch_decode(greedy, skip_special_tokens=True)
    assert [processor.decode(label.text) for label in labels] == transcripts
    assert all(len(label.text) > 3 for label in labels)

    eot = config.eos_token_id
    packed = distillation_set(teacher, processor.feature_extractor, clips, labels, pack_seconds=30, progress=False)
    assert len(packed) == 1 and packed.tokens[0, : packed.lengths[0]].tolist() == [
        start, english, transcribe, nots, *labels[0].text, *labels[1].text, *labels[2].text, eot]
    mixed = labels[:2] + [Transcript((start, german, transcribe, nots), labels[2].text)]
    data = distillation_set(teacher, processor.feature_extractor, clips, mixed, pack_seconds=30, progress=False)
    rows = [data.tokens[i, : data.lengths[i]].tolist() for i in range(len(data))]
    assert rows == [[start, english, transcribe, nots, *labels[0].text, *labels[1].text, eot],
                    [start, german, transcribe, nots, *labels[2].text, eot]]
    joined = np.concatenate([clips[0], np.zeros(8_000, np.float32), clips[1]])  # 0.5 s of silence between
    assert torch.allclose(data.features[0], processor(joined, sampling_rate=16_000, return_tensors="pt")
                          .input_features[0], atol=1e-5)

    # The teacher as its own student: KL 0, and the CE counts the language token (predicted from the start token)
    # as one of the positions.
    options = RecoveryOptions(ce_weight=1.0, kl_weight=1.0)
    _, parts = distillation_loss(teacher, packed.batch(torch.arange(1)), options)
    with torch.no_grad():
        tokens = packed.tokens[:1, : packed.lengths[0]]
        logits = teacher(input_features=packed.features[:1], decoder_input_ids=tokens[:, :-1]).logits[0].double()
    nll = -torch.log_softmax(logits, -1)[torch.arange(len(logits)), tokens[0, 1:]]
    assert parts["kl"] == pytest.approx(0.0, abs=1e-6)
    assert parts["ce"] == pytest.approx(float(nll.mean()), rel=1e-4)
    assert parts["ce"] != pytest.approx(float(nll[1:].mean()), rel=1e-3)  # not without the language position
    assert heldout_loss(teacher, packed, options) == pytest.approx(parts["ce"], rel=1e-4)


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

"""Iterative: compress in rounds towards the target, recovering from the original model between them.

One-shot rank choice works up to a compression level and fails beyond it; searching again in rounds on the
model as it has become (Mehrotra et al. 2020, after ShrinkML's re-training between searches) goes further. Each
round, on the current (already compressed and recovered) model:
  1. statistics and sensitivity are measured on the current model (it is seen as a plain Whisper whose
     projections hold the current low-rank maps: lite_model.dense_whisper);
  2. the round's budget is allocated with every rank capped at its current value (ranks only shrink);
  3. the current maps are refactorized to the new ranks (one-shot PCA of their outputs: at an unchanged rank the
     map is kept as it is);
  4. recovery distils the factors from the ORIGINAL model (teacher outputs and pseudo-labels computed once),
     stopping early on the held-out clips.
The total recovery steps (`RecoveryOptions.steps`) are split evenly over the rounds, so that iterative and one-shot
+ recovery compare at the same training cost. Every round is recorded (ranks, budget, held-out loss, agreement
with the original on the held-out clips, seconds).
"""

from __future__ import annotations

import time
from dataclasses import replace

import jiwer

from lite_whisper.compression import budget as budget_mod
from lite_whisper.compression import distributed
from lite_whisper.compression.allocation import make_chooser
from lite_whisper.compression.budget import low_rank_config
from lite_whisper.compression.lite_model import build_lite_whisper, dense_whisper, factors_of
from lite_whisper.compression.pipelines.base import Job, Pipeline
from lite_whisper.compression.pipelines.oneshot import OneShotPipeline
from lite_whisper.compression.recovery import distillation_data, pseudo_labels, recover_on
from lite_whisper.loops import is_loop


def split_steps(total: int, rounds: int) -> list[int]:
    """`total` recovery steps over `rounds` rounds, as evenly as possible (the later rounds get the rest)."""
    return [total // rounds + (1 if i >= rounds - total % rounds else 0) for i in range(rounds)]


def agreement(student, teacher_labels: list, feature_extractor, clips: list) -> dict:
    """How the student's greedy transcripts of `clips` differ from the teacher's (token error rate, in percent,
    over the decoded token ids) and how many loop."""
    student_labels = pseudo_labels(student, feature_extractor, clips)
    hyp = [" ".join(map(str, t.text)) or "<empty>" for t in student_labels]
    ref = [" ".join(map(str, t.text)) or "<empty>" for t in teacher_labels]
    loops = sum(is_loop(h, r) and not is_loop(r) for h, r in zip(hyp, ref))
    return {"token_error_rate_vs_original": round(100 * jiwer.wer(ref, hyp), 2), "looping_clips": loops}


class IterativePipeline(Pipeline):
    name = "iterative"

    def run(self, job: Job):
        options = job.options
        budgets = options.round_budgets()
        target = "target_params" if options.target_params is not None else "target_speedup"
        # What the original (the teacher in every round) makes of the clips, computed once.
        train, heldout = distillation_data(job.model, job.feature_extractor, job.train_clips, job.heldout_clips,
                                           options)
        teacher_heldout = pseudo_labels(job.model, job.feature_extractor, job.heldout_clips)
        clips = (len(job.train_clips), len(job.heldout_clips))
        current, caps, rounds = job.model, {}, []
        for index, (budget, steps) in enumerate(zip(budgets, split_steps(options.recovery.steps, len(budgets)))):
            start = time.time()
            round_options = replace(options, **{target: budget}, recovery=replace(options.recovery, steps=steps))
            gains: dict = {}
            chooser = make_chooser(current, job.features, round_options, gains, caps=caps)
            shard = distributed.shard(job.features, options.batch_size)
            result = OneShotPipeline().compress(current.get_encoder(), shard, chooser, options.batch_size)
            lite = build_lite_whisper(current, {k: tuple(t.float() for t in v) for k, v in result.factors.items()})
            result.recovery = recover_on(lite, train, heldout, round_options, num_clips=clips)
            rounds.append(self.record(index, budget, target, job, result, lite, teacher_heldout, start))
            caps = dict(result.ranks)
            current = dense_whisper(job.model, lite)
        result.gains, result.windows, result.rounds = gains, shard.shape[0], rounds
        result.factors = factors_of(lite)
        return lite, result

    @staticmethod
    def record(index, budget, target, job, result, lite, teacher_heldout, start) -> dict:
        config = job.model.config
        dense = budget_mod.encoder_params(config)
        return {
            "round": index + 1,
            target: budget,
            "encoder_params_fraction": budget_mod.encoder_params(config, result.ranks) / dense,
            "encoder_flops_speedup": budget_mod.encoder_flops(config) / budget_mod.encoder_flops(config, result.ranks),
            "low_rank_config": low_rank_config(config.encoder_layers, result.ranks),
            "recovery": result.recovery,
            "heldout_loss": result.recovery.get("heldout_loss_best"),
            **agreement(lite, teacher_heldout, job.feature_extractor, job.heldout_clips),
            "seconds": round(time.time() - start, 1),
        }

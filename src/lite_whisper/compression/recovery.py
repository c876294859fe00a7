"""Recovery: a short distillation of the low-rank factors through the frozen decoder, the original as teacher.

The encoder's output is read only through the decoder's cross-attention. Matching it in plain MSE (healing)
spends the factors on directions the decoder ignores, and on the padding frames of short clips as much as on
speech. Here the student is judged by what the decoder makes of its encoder: teacher-forced on the teacher's
own greedy transcripts of the calibration audio (pseudo-labels: calibration still needs no reference text),
its next-token distributions are pulled towards the teacher's, as distil-whisper does (cross-entropy on the
pseudo-labels plus KL at a temperature), optionally with an encoder-output MSE term. Only the factors train by
default; the decoder is frozen (and shared with the teacher).

Against overfitting a small calibration set: augmented copies of the clips (augment.py), a held-out slice of
clips that neither the statistics nor the training see, scored every few steps for early stopping (the best
factors are kept), and a warm-up + cosine learning-rate schedule. `recover` returns the loss curves, the
stopping step and the held-out loss for conversion.json.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers.modeling_outputs import BaseModelOutput

from lite_whisper.compression import distributed
from lite_whisper.compression.augment import Augmentation, augmented_copies
from lite_whisper.compression.options import ConversionOptions, RecoveryOptions
from lite_whisper.compression.statistics import batches
from lite_whisper.data.windows import join_clips, log_mel_features, pack_groups
from lite_whisper.whisper import is_english_only

# Below this many known speakers the held-out slice is drawn clip by clip.
MIN_HELDOUT_SPEAKERS = 4
# Longest pseudo-label: Whisper's decoder holds 448 positions, and a 30 s window of fast speech ~150 tokens.
MAX_LABEL_TOKENS = 224


@dataclass
class DistillationSet:
    """Windows with what the teacher makes of them, computed once."""

    features: torch.Tensor  # (n, mels, frames) log-mel windows
    targets: torch.Tensor  # (n, positions, d_model) the teacher's encoder outputs
    tokens: torch.Tensor  # (n, L) prompt + pseudo-label + end of text, padded with end of text
    lengths: torch.Tensor  # (n,) tokens per row before padding

    def __len__(self) -> int:
        return self.features.shape[0]

    def batch(self, index) -> tuple[torch.Tensor, ...]:
        length = int(self.lengths[index].max())
        return self.features[index], self.targets[index], self.tokens[index, :length], self.lengths[index]


# --- the teacher's side -------------------------------------------------------------------------------------


@dataclass
class Transcript:
    """The teacher's reading of one clip: its decoder prompt and its greedy text tokens (no end of text)."""

    prompt: tuple[int, ...]  # <|startoftranscript|> (+ language, <|transcribe|>) + <|notimestamps|>
    text: list[int]


def decoder_prompts(teacher, encoder_out: torch.Tensor) -> tuple[list[tuple[int, ...]], list[str] | None]:
    """Decoder prompts as Whisper's generate() builds them without timestamps: <|startoftranscript|>, then for a
    multilingual model the detected language and <|transcribe|>, then <|notimestamps|>. Also the languages."""

    config = teacher.generation_config
    start, no_timestamps = config.decoder_start_token_id, config.no_timestamps_token_id
    if is_english_only(config):
        return [(start, no_timestamps)] * encoder_out.shape[0], None
    lang_ids = teacher.detect_language(encoder_outputs=BaseModelOutput(last_hidden_state=encoder_out)).tolist()
    id_to_lang = {v: k for k, v in config.lang_to_id.items()}
    transcribe = config.task_to_id["transcribe"]
    return [(start, lang, transcribe, no_timestamps) for lang in lang_ids], [id_to_lang[lang] for lang in lang_ids]


@torch.inference_mode()
def pseudo_labels(teacher, feature_extractor, clips: list, batch_size: int = 8,
                  progress: bool = True) -> list[Transcript]:
    """The teacher's greedy transcript of each clip (the labels of the clip's augmented copies too: augmentation
    leaves the words as they are, and the clean clip is read best)."""


    eot = teacher.generation_config.eos_token_id
    labels = []
    for sl in tqdm(batches(len(clips), batch_size), desc="pseudo-labels", unit="batch", disable=not progress):
        features = log_mel_features(clips[sl], feature_extractor).to(teacher.device, teacher.dtype)
        out = teacher.get_encoder()(features).last_hidden_state
        prompts, languages = decoder_prompts(teacher, out)
        kwargs = {"language": languages, "task": "transcribe"} if languages else {}
        # No max_new_tokens: beside the generation config's max_length transformers 5.x warns on every call;
        # greedy decoding is the same up to the cut at MAX_LABEL_TOKENS.
        tokens = teacher.generate(encoder_outputs=BaseModelOutput(last_hidden_state=out), num_beams=1,
                                  do_sample=False, **kwargs)
        for prompt, seq in zip(prompts, tokens.tolist()):
            labels.append(Transcript(prompt, (seq[: seq.index(eot)] if eot in seq else seq)[:MAX_LABEL_TOKENS]))
    return labels


@torch.inference_mode()
def distillation_set(teacher, feature_extractor, clips: list, labels: list[Transcript], pack_seconds: float = 0.0,
                     batch_size: int = 8, progress: bool = True) -> DistillationSet:
    """Windows of `clips` (packed up to `pack_seconds` when > 0; only clips of one prompt share a window), the
    teacher's encoder outputs on them, and their teacher-forcing tokens: the prompt, the clips' labels in order,
    end of text."""


    rate = feature_extractor.sampling_rate
    silence = np.zeros(rate // 2, dtype=np.float32)
    limit = int((pack_seconds if pack_seconds > 0 else 0) * rate)
    groups = pack_groups([len(c) for c in clips], limit, len(silence), keys=[t.prompt for t in labels])
    eot = teacher.generation_config.eos_token_id
    rows = [list(labels[g[0]].prompt) + [tok for i in g for tok in labels[i].text][:MAX_LABEL_TOKENS] + [eot]
            for g in groups]
    features, targets = [], []
    for sl in tqdm(batches(len(groups), batch_size), desc="teacher outputs", unit="batch", disable=not progress):
        window = log_mel_features([join_clips([clips[i] for i in g], silence) for g in groups[sl]], feature_extractor)
        targets.append(teacher.get_encoder()(window.to(teacher.device, teacher.dtype)).last_hidden_state.float().cpu())
        features.append(window)
    lengths = torch.tensor([len(r) for r in rows])
    tokens = torch.full((len(rows), int(lengths.max())), eot, dtype=torch.long)
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = torch.tensor(row)
    return DistillationSet(torch.cat(features), torch.cat(targets), tokens, lengths)


# --- the loss -------------------------------------------------------------------------------------------------


def distillation_loss(student, batch: tuple[torch.Tensor, ...], options: RecoveryOptions) -> tuple[torch.Tensor, dict]:
    """Weighted CE on the pseudo-labels + T^2 KL(teacher || student) at temperature T (+ encoder-output MSE),
    over every predicted position of the teacher-forced sequences (the language token included)."""
    features, targets, tokens, lengths = (t.to(student.device) for t in batch)
    inputs, labels = tokens[:, :-1], tokens[:, 1:]
    mask = torch.arange(labels.shape[1], device=labels.device)[None, :] < (lengths[:, None] - 1)
    encoded = student.get_encoder()(features.to(student.dtype)).last_hidden_state
    decoder, head = student.get_decoder(), student.proj_out
    logits = head(decoder(input_ids=inputs, encoder_hidden_states=encoded).last_hidden_state)[mask].float()
    with torch.no_grad():
        teacher = head(decoder(input_ids=inputs, encoder_hidden_states=targets.to(encoded.dtype)).last_hidden_state)
        teacher = teacher[mask].float()
    parts = {}
    if options.ce_weight:
        parts["ce"] = nn.functional.cross_entropy(logits, labels[mask])
    if options.kl_weight:
        t = options.temperature
        parts["kl"] = t * t * nn.functional.kl_div(
            nn.functional.log_softmax(logits / t, -1), nn.functional.log_softmax(teacher / t, -1),
            log_target=True, reduction="batchmean")
    if options.mse_weight:
        parts["mse"] = nn.functional.mse_loss(encoded.float(), targets.float())
    weights = {"ce": options.ce_weight, "kl": options.kl_weight, "mse": options.mse_weight}
    total = sum(weights[k] * v for k, v in parts.items())
    return total, {k: float(v.detach()) for k, v in parts.items()}


@torch.no_grad()
def heldout_loss(student, data: DistillationSet, options: RecoveryOptions) -> float:
    """Mean loss over the held-out windows (the student in eval mode)."""
    was_training = student.training
    student.eval()
    total = 0.0
    for sl in batches(len(data), options.batch_size):
        index = torch.arange(sl.start, sl.stop)
        loss, _ = distillation_loss(student, data.batch(index), options)
        total += float(loss) * len(index)
    student.train(was_training)
    return total / max(len(data), 1)


# --- training -------------------------------------------------------------------------------------------------


def trainable_parameters(student, train_norms: bool) -> list[nn.Parameter]:
    """The encoder's low-rank factors, and with `train_norms` its layer norms and remaining biases.

    Those extra tensors are shared with the teacher (build_lite_whisper copies nothing): they are given their own
    storage first, so that training the student leaves the teacher as it was."""
    encoder = student.get_encoder()
    # By name: a model loaded with trust_remote_code has the Hub module's own copy of the class.
    params = [p for m in encoder.modules() if type(m).__name__ == "LowRankLinear" for p in m.parameters()]
    if train_norms:
        for module in encoder.modules():
            if isinstance(module, nn.LayerNorm) or (isinstance(module, nn.Linear) and module.bias is not None):
                names = ["weight", "bias"] if isinstance(module, nn.LayerNorm) else ["bias"]
                for name in names:
                    fresh = nn.Parameter(getattr(module, name).detach().clone())
                    setattr(module, name, fresh)
                    params.append(fresh)
    return params


def _learning_rate(step: int, options: RecoveryOptions) -> float:
    """The learning rate of step `step` (0 to steps - 1): linear warm-up to the peak over `warmup` steps, then
    cosine decay from the peak to a tenth of it at the last step."""
    if step < options.warmup:
        return options.lr * (step + 1) / options.warmup
    progress = (step - options.warmup) / max(1, options.steps - 1 - options.warmup)
    return options.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def recover(student, train: DistillationSet, heldout: DistillationSet, options: RecoveryOptions,
            gradient_hook=None, progress: bool = True) -> dict:
    """Distil the student's trainable tensors for up to `options.steps` steps; keep the best held-out state.

    `gradient_hook(params)` lets data-parallel training average gradients across processes."""
    options.validate()
    start = time.time()
    params = trainable_parameters(student, options.train_norms)
    if not params or options.steps == 0 or len(train) == 0:
        return {}
    flags = {p: p.requires_grad for p in student.parameters()}  # given back as they were afterwards
    for p in flags:
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    if gradient_hook is not None:
        gradient_hook(params)
    torch.manual_seed(options.seed)
    generator = torch.Generator().manual_seed(options.seed)
    optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=0.0)
    best = heldout_loss(student, heldout, options) if len(heldout) else float("nan")
    report = {"options": asdict(options), "heldout_windows": len(heldout), "train_windows": len(train),
              "heldout_loss": [[0, round(best, 5)]], "train_loss": [], "best_step": 0}
    best_state, bad_evals, window_loss, step = [p.detach().clone() for p in params], 0, [], 0
    student.train()
    try:
        for step in tqdm(range(1, options.steps + 1), desc="recovery", unit="step", disable=not progress):
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(step - 1, options)
            index = torch.randperm(len(train), generator=generator)[: options.batch_size]
            loss, _ = distillation_loss(student, train.batch(index), options)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            window_loss.append(float(loss.detach()))
            if step % options.eval_every and step != options.steps:
                continue
            report["train_loss"].append([step, round(sum(window_loss) / len(window_loss), 5)])
            window_loss = []
            if not len(heldout):
                continue
            current = heldout_loss(student, heldout, options)
            report["heldout_loss"].append([step, round(current, 5)])
            if current < best:
                best, bad_evals, report["best_step"] = current, 0, step
                best_state = [p.detach().clone() for p in params]
            else:
                bad_evals += 1
                if bad_evals >= options.patience:
                    break
    finally:
        student.eval()
        for p, flag in flags.items():
            p.requires_grad_(flag)
    if len(heldout):
        with torch.no_grad():
            for p, value in zip(params, best_state):
                p.copy_(value)
    report.update(steps_run=step, stopped_early=step < options.steps, heldout_loss_best=round(best, 5),
                  seconds=round(time.time() - start, 1))
    return report


# --- recovery of a conversion: the calibration clips split, labelled, augmented, distilled ---------------------


def split_heldout(arrays: list, share: float, seed: int = 0,
                  speakers: list | None = None) -> tuple[list, list]:
    """(training clips, held-out clips): a seeded `share` of the clips (at least one) is held out.

    With `speakers` (one per clip, None where unknown) and at least MIN_HELDOUT_SPEAKERS of them, whole speakers are
    held out, in seeded order, until the share is reached: early stopping and the quality check then judge speech
    unlike the training speech (another voice, engine or recording), as the user's will be."""
    count = max(1, round(share * len(arrays)))
    if count >= len(arrays):
        raise ValueError(f"{len(arrays)} calibration clips cannot spare {count} for the held-out slice: "
                         "use more --num-samples")
    generator = torch.Generator().manual_seed(seed)
    known = sorted({s for s in speakers or [] if s is not None})
    if len(known) >= MIN_HELDOUT_SPEAKERS:
        held: set[int] = set()
        for i in torch.randperm(len(known), generator=generator).tolist():
            if len(held) >= count:
                break
            chosen = [j for j, s in enumerate(speakers) if s == known[i]]
            if len(held) + len(chosen) <= 2 * count:  # a speaker with most of the clips stays in training
                held.update(chosen)
    if len(known) < MIN_HELDOUT_SPEAKERS or not held:
        held = set(torch.randperm(len(arrays), generator=generator).tolist()[:count])
    return [a for i, a in enumerate(arrays) if i not in held], [a for i, a in enumerate(arrays) if i in held]


def distillation_data(teacher, feature_extractor, train_clips: list, heldout_clips: list,
                      options: ConversionOptions) -> tuple[DistillationSet, DistillationSet]:
    """What the teacher (the original model) makes of the training clips' augmented copies and of the held-out
    clips, computed once: pseudo-labels, encoder outputs. This process's share of the training windows."""
    seed, pack = options.recovery.seed, options.recovery_pack_seconds
    labels = pseudo_labels(teacher, feature_extractor, train_clips + heldout_clips)
    clips, sources = augmented_copies(train_clips, options.augment_copies, Augmentation(), seed=seed)
    # Data-parallel over processes: each trains on its share of the windows, gradients are averaged, and every
    # process scores the whole held-out slice, so all stop at the same step with the same factors.
    mine = list(range(len(clips)))[distributed.process_index()::distributed.num_processes()]
    train = distillation_set(teacher, feature_extractor, [clips[i] for i in mine], [labels[sources[i]] for i in mine],
                             pack)
    heldout = distillation_set(teacher, feature_extractor, heldout_clips, labels[len(train_clips):], pack)
    return train, heldout


def recover_on(student, train: DistillationSet, heldout: DistillationSet, options: ConversionOptions,
               recovery: RecoveryOptions | None = None, num_clips: tuple[int, int] = (0, 0)) -> dict:
    """Distil the student on `train`, stopping early on `heldout`; the report names the clips and windows."""
    report = recover(student, train, heldout, recovery or options.recovery,
                     gradient_hook=distributed.average_gradients)
    report.update(heldout_clips=num_clips[1], train_clips=num_clips[0], augment_copies=options.augment_copies,
                  pack_seconds=options.recovery_pack_seconds)
    return report


def recover_from_clips(teacher, student, feature_extractor, train_clips: list, heldout_clips: list,
                       options: ConversionOptions) -> dict:
    """Distil the student on augmented copies of the training clips, stopping early on the held-out clips."""
    train, heldout = distillation_data(teacher, feature_extractor, train_clips, heldout_clips, options)
    return recover_on(student, train, heldout, options, num_clips=(len(train_clips), len(heldout_clips)))

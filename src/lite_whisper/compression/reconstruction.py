"""Block-wise reconstruction: each compressed encoder layer fitted to the original layer's output.

Decoder-aware recovery (recovery.py) learns from a few hundred next-token distributions per window, through a
decoder pass per step. The field's cheap recovery after a low-rank cut is local (SVD-LLM, AA-SVD): the original
encoder's activations on the calibration windows are computed once, and each compressed layer in turn is trained
to reproduce the original layer's output, fed with the outputs of the compressed layers below it (so that it also
corrects what they lost). No decoder, no decoding; every frame of every layer is a target:

    loss = sum_f w_f ||layer_c(h_c)_f - layer_o(h_o)_f||^2 / sum_f w_f ||layer_o(h_o)_f - mean||^2

a relative squared error, with speech frames weighted 1 and padding frames `padding_weight`: a 30 s window of
one 3 s clip is 90% padding, which would otherwise set the targets. Per layer:
  (a) optionally, a closed-form refit (`refit`): each projection's first factor re-solved by least squares from
      the compressed path's inputs to the original outputs, its PCA output basis kept and the solution shrunk
      towards the PCA factor (factorize.Spectrum.factors with `basis`; SVD-LLM's update);
  (b) `epochs` passes of AdamW over the layer's low-rank factors and biases; the epoch with the lowest loss on
      held-out windows is kept.
Activations live on disk (activations.py): RAM holds a batch, whatever the number of windows.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from lite_whisper.compression.activations import ActivationStore, fill
from lite_whisper.compression.factors import spectrum
from lite_whisper.compression.options import ReconstructionOptions
from lite_whisper.compression.statistics import batches, calibrate_layer, run_layer
from lite_whisper.data.windows import log_mel_features, pack_clips, speech_frames
from lite_whisper.modeling.modeling_lite_whisper import LowRankLinear, get_projection


class Windows:
    """Log-mel windows of clips (packed) and the weight of each encoder frame in the loss."""

    def __init__(self, clips: list, feature_extractor, pack_seconds: float, padding_weight: float) -> None:
        arrays = pack_clips(clips, pack_seconds) if pack_seconds > 0 else [np.asarray(c) for c in clips]
        self.features = log_mel_features(arrays, feature_extractor)
        speech = speech_frames([len(a) for a in arrays])
        self.weights = torch.where(speech, 1.0, padding_weight)
        self.speech_seconds = sum(len(a) for a in arrays) / 16_000

    def __len__(self) -> int:
        return self.features.shape[0]


def _encoder_inputs(encoder, windows: Windows, batch_size: int) -> ActivationStore:
    """Hidden states entering the first layer (convolutions + positions: not compressed, the same for both)."""
    device, dtype = encoder.conv1.weight.device, encoder.conv1.weight.dtype
    d_model = encoder.conv1.out_channels
    store = ActivationStore((len(windows), encoder.embed_positions.weight.shape[0], d_model))

    @torch.no_grad()
    def stem(sl):
        x = windows.features[sl].to(device, dtype)
        x = nn.functional.gelu(encoder.conv2(nn.functional.gelu(encoder.conv1(x)))).permute(0, 2, 1)
        return x + encoder.embed_positions.weight[: x.shape[1]]

    return fill(store, stem, len(windows), batch_size)


@torch.no_grad()
def _forward(layer, source: ActivationStore, target: ActivationStore, batch_size: int) -> None:
    device, dtype = next(layer.parameters()).device, next(layer.parameters()).dtype
    fill(target, lambda sl: run_layer(layer, source[sl].to(device, dtype)), len(source), batch_size)


def _error_terms(output: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(sum_f w_f ||output_f - target_f||^2, sum_f w_f ||target_f - weighted mean||^2) over (windows, frames, d)."""
    w = weights.to(output.device, output.dtype)[..., None]
    target = target.to(output.device, output.dtype)
    mean = (w * target).sum((0, 1)) / w.sum((0, 1)).clamp_min(1e-12)
    return (w * (output - target).square()).sum(), (w * (target - mean).square()).sum()


def relative_error(output: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The weighted squared error of `output` relative to the weighted variance of `target` (the loss)."""
    num, den = _error_terms(output, target, weights)
    return num / den.clamp_min(1e-12)


def _summed_error(pairs) -> float:
    """Relative error over batches of (output, target, weights): numerators and denominators summed first."""
    num = den = 0.0
    for output, target, weights in pairs:
        terms = _error_terms(output.float(), target, weights)
        num, den = num + float(terms[0]), den + float(terms[1])
    return num / max(den, 1e-12)


@torch.no_grad()
def _layer_error(layer, inputs: ActivationStore, targets: ActivationStore, weights: torch.Tensor,
                 batch_size: int) -> float:
    """Relative error of `layer` fed with `inputs` against `targets`, over every window."""
    device, dtype = next(layer.parameters()).device, next(layer.parameters()).dtype
    return _summed_error((run_layer(layer, inputs[sl].to(device, dtype)), targets[sl], weights[sl])
                         for sl in batches(len(inputs), batch_size))


def low_rank_parameters(layer) -> list[nn.Parameter]:
    """The factors and biases of a layer's low-rank projections (by class name: a Hub-loaded class counts)."""
    return [p for m in layer.modules() if type(m).__name__ == LowRankLinear.__name__ for p in m.parameters()]


def refit_layer(original, compressed, h_o: ActivationStore, h_c: ActivationStore, batch_size: int,
                damping: float) -> None:
    """(a): each low-rank projection of `compressed`, stage by stage, re-solved by ridge regression from the
    compressed path's inputs to the original outputs, on its current output basis (weight2's rows, the PCA
    directions). Reads copies of the stores' tensors (calibrate_layer moves its buffers through the layer)."""

    def fit(names, cov):
        for name in names:
            low = get_projection(compressed, name)
            if not isinstance(low, nn.Module) or not hasattr(low, "weight2"):
                continue  # kept dense
            basis = low.weight2.detach().double().T  # (d_out, k), orthonormal for PCA factors
            spec = spectrum(get_projection(original, name), cov, damping=damping)
            with torch.inference_mode(False), torch.no_grad():  # calibrate_layer runs in inference mode
                for param, value in zip((low.weight1, low.weight2, low.bias), spec.factors(basis.shape[1], basis)):
                    param.copy_(value.to(param.dtype).clone())

    calibrate_layer(original, compressed, h_o.tensor.clone(), h_c.tensor.clone(), fit, batch_size)


def train_layer(layer, inputs: ActivationStore, targets: ActivationStore, weights: torch.Tensor,
                heldout: tuple[ActivationStore, ActivationStore, torch.Tensor] | None,
                options: ReconstructionOptions, desc: str) -> dict:
    """(b): AdamW on the layer's low-rank factors and biases against the original layer's outputs; the epoch
    with the lowest held-out relative error is kept (the start included). Returns the errors by epoch."""
    params = low_rank_parameters(layer)
    device, dtype = next(layer.parameters()).device, next(layer.parameters()).dtype
    score = (lambda: _layer_error(layer, *heldout, options.batch_size)) if heldout else (lambda: float("nan"))
    errors = [score()]
    best, best_state = errors[0], [p.detach().clone() for p in params]
    if not params or options.epochs == 0:
        return {"heldout_error": errors, "best_epoch": 0}
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(options.seed)
    steps_per_epoch = -(-len(inputs) // options.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=options.epochs * steps_per_epoch,
                                                          eta_min=options.lr / 10)
    train_error = []
    for epoch in tqdm(range(1, options.epochs + 1), desc=desc, unit="epoch", leave=False):
        order, total = torch.randperm(len(inputs), generator=generator), 0.0
        for start in range(0, len(inputs), options.batch_size):
            index = order[start:start + options.batch_size]
            out = run_layer(layer, inputs[index].to(device, dtype))
            loss = relative_error(out.float(), targets[index].to(device), weights[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
        train_error.append(total / steps_per_epoch)
        errors.append(score())
        if not heldout or errors[-1] < best:
            best, best_state = errors[-1], [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, value, flag in zip(params, best_state, flags):
            p.copy_(value)
            p.requires_grad_(flag)
    return {"heldout_error": [round(e, 5) for e in errors], "train_error": [round(e, 5) for e in train_error],
            "best_epoch": errors.index(best) if heldout else options.epochs}


def layer_errors(original_encoder, lite_encoder, windows: Windows, batch_size: int = 4) -> list[float]:
    """Relative error of each lite layer's output against the original's, both encoders run end to end on
    `windows` (the lite one on its own outputs, as in use)."""
    h_o, h_c = (_encoder_inputs(original_encoder, windows, batch_size) for _ in range(2))
    errors = []
    try:
        for layer_o, layer_c in zip(original_encoder.layers, lite_encoder.layers):
            _forward(layer_o, h_o, h_o, batch_size)
            _forward(layer_c, h_c, h_c, batch_size)
            errors.append(_summed_error((h_c[sl], h_o[sl], windows.weights[sl])
                                        for sl in batches(len(windows), batch_size)))
    finally:
        h_o.close()
        h_c.close()
    return errors


def reconstruct(original_encoder, lite_encoder, train: Windows, heldout: Windows | None,
                options: ReconstructionOptions, progress: bool = True) -> dict:
    """Fit every low-rank layer of `lite_encoder` to `original_encoder`'s layer outputs, in order (see the module
    doc). Returns the report for conversion.json: per layer, the held-out relative error before and after."""
    start = time.time()
    torch.manual_seed(options.seed)
    was_training = lite_encoder.training
    lite_encoder.eval()  # Whisper's dropouts off; run_layer has none anyway
    sets = {"train": train, **({"heldout": heldout} if heldout is not None and len(heldout) else {})}
    h_o = {k: _encoder_inputs(original_encoder, w, options.batch_size) for k, w in sets.items()}
    h_c = {k: _encoder_inputs(original_encoder, w, options.batch_size) for k, w in sets.items()}
    y_o = {k: ActivationStore(h_o[k].shape) for k in sets}
    layers = []
    try:
        pairs = list(zip(original_encoder.layers, lite_encoder.layers))
        for idx, (layer_o, layer_c) in enumerate(tqdm(pairs, desc="reconstruction", unit="layer",
                                                      disable=not progress)):
            for k in sets:
                _forward(layer_o, h_o[k], y_o[k], options.batch_size)
            record = {"layer": idx}
            held = (h_c["heldout"], y_o["heldout"], heldout.weights) if "heldout" in sets else None
            if held:
                record["heldout_error_start"] = round(_layer_error(layer_c, *held, options.batch_size), 5)
            if options.refit and low_rank_parameters(layer_c):
                refit_layer(layer_o, layer_c, h_o["train"], h_c["train"], options.batch_size, options.ridge)
                if held:
                    record["heldout_error_refit"] = round(_layer_error(layer_c, *held, options.batch_size), 5)
            record.update(train_layer(layer_c, h_c["train"], y_o["train"], train.weights, held, options,
                                      f"layer {idx}"))
            layers.append(record)
            for k in sets:  # the compressed path moves on through the fitted layer; the original one by swapping
                _forward(layer_c, h_c[k], h_c[k], options.batch_size)
                h_o[k], y_o[k] = y_o[k], h_o[k]
    finally:
        for store in [*h_o.values(), *h_c.values(), *y_o.values()]:
            store.close()
        lite_encoder.train(was_training)
    return {"options": asdict(options), "train_windows": len(train),
            "heldout_windows": len(heldout) if heldout is not None else 0,
            "speech_seconds": round(train.speech_seconds, 1), "layers": layers,
            "seconds": round(time.time() - start, 1)}

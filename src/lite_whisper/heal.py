"""Healing: a short fit of the low-rank factors to the original encoder's outputs on the calibration audio.

Only the factors (weight1, weight2, bias of each LowRankLinear) move; everything else stays the base model's.
The targets are the original encoder's outputs, which the calibration pass computes anyway. Off by default;
`--heal-steps N` turns it on, and conversion.json records the loss before and after.
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm


def low_rank_parameters(encoder: nn.Module) -> list[nn.Parameter]:
    from .modeling.modeling_lite_whisper import LowRankLinear

    return [p for m in encoder.modules() if isinstance(m, LowRankLinear) for p in m.parameters()]


def heal(encoder: nn.Module, features: torch.Tensor, targets: torch.Tensor, steps: int, *, lr: float = 1e-4,
         batch_size: int = 4, seed: int = 0) -> dict[str, float]:
    """Adam on the factors for `steps` mini-batches; returns the output MSE before and after (all windows)."""
    params = low_rank_parameters(encoder)
    if not params or steps <= 0:
        return {}
    frozen = [p for p in encoder.parameters() if p.requires_grad and all(p is not q for q in params)]
    for p in frozen:
        p.requires_grad_(False)
    device, dtype = params[0].device, params[0].dtype
    before = output_mse(encoder, features, targets, batch_size)
    optimizer = torch.optim.Adam(params, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    try:
        for _ in tqdm(range(steps), desc="healing", unit="step"):
            idx = torch.randint(len(features), (min(batch_size, len(features)),), generator=generator)
            out = encoder(features[idx].to(device, dtype)).last_hidden_state
            loss = nn.functional.mse_loss(out.float(), targets[idx].to(device).float())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return {"heal_steps": steps, "output_mse_before": before, "output_mse_after": output_mse(encoder, features, targets, batch_size)}


@torch.no_grad()
def output_mse(encoder: nn.Module, features: torch.Tensor, targets: torch.Tensor, batch_size: int) -> float:
    p = next(encoder.parameters())
    total, count = 0.0, 0
    for i in range(0, len(features), batch_size):
        out = encoder(features[i : i + batch_size].to(p.device, p.dtype)).last_hidden_state.float()
        total += float((out - targets[i : i + batch_size].to(p.device).float()).square().sum())
        count += out.numel()
    return total / count

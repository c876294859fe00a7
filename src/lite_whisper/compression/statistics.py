"""Calibration: sufficient statistics of the encoder projections, gathered layer by layer.

Nothing here keeps activations beyond one layer's inputs for the calibration batch (as sequential quantizers
do): each projection accumulates count, sums and a (cross-)Gram matrix in float64, which is all that PCA and
reduced-rank regression need. The statistics of several processes add up (`Covariance.all_reduce`).

Sequential mode pairs two paths through the encoder: the original one (targets) and the compressed one
(layers before the current one already factorized). For each projection we keep, frame by frame,
    input side  (d_in <= d_out: q, k, v, out_proj, fc1):  u = compressed-path input,   s = original-path input
    output side (d_out <  d_in: fc2):                     u = W x_c + b (dense output), s = original output
so that a factorization can aim at the original output from the compressed input (see factors.py), with the
matrix that is cheaper to accumulate. In one-shot mode both paths are the original one and s = u.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn


def input_side(linear: nn.Linear) -> bool:
    """Whether statistics of this projection are cheaper on its input (d_in <= d_out) than on its output."""
    return linear.in_features <= linear.out_features


@dataclass
class Covariance:
    """Running sums over frames of paired vectors (s, u): n, sum s, sum u, sum s u^T, sum u u^T (float64).

    `paired=False` means s is u (one-shot mode): only the Gram of u is kept. Frames are shifted by a fixed
    vector (the first batch's mean) before the float32 products, so that a large mean does not swamp the
    small variances when the mean is later subtracted; the shift is removed in float64.
    """

    dim: int
    paired: bool = False
    device: torch.device | str = "cpu"
    n: int = 0
    sum_u: torch.Tensor = field(init=False)
    gram_uu: torch.Tensor = field(init=False)
    sum_s: torch.Tensor | None = field(init=False, default=None)
    cross_su: torch.Tensor | None = field(init=False, default=None)
    shift_u: torch.Tensor | None = field(init=False, default=None)
    shift_s: torch.Tensor | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        zeros = lambda *shape: torch.zeros(*shape, dtype=torch.float64, device=self.device)  # noqa: E731
        self.sum_u, self.gram_uu = zeros(self.dim), zeros(self.dim, self.dim)
        if self.paired:
            self.sum_s, self.cross_su = zeros(self.dim), zeros(self.dim, self.dim)

    def update(self, u: torch.Tensor, s: torch.Tensor | None = None) -> None:
        """Add frames: u (and s when paired) of shape (..., dim)."""
        uf = u.reshape(-1, self.dim).float()
        if self.shift_u is None:
            self.shift_u = _common(uf.mean(0))
        uf = uf - self.shift_u
        self.n += uf.shape[0]
        self.sum_u += uf.sum(0, dtype=torch.float64)
        self.gram_uu += (uf.T @ uf).double()
        if self.paired:
            sf = s.reshape(-1, self.dim).float()
            if self.shift_s is None:
                self.shift_s = _common(sf.mean(0))
            sf = sf - self.shift_s
            self.sum_s += sf.sum(0, dtype=torch.float64)
            self.cross_su += (sf.T @ uf).double()

    def _shift(self, which: str) -> torch.Tensor:
        shift = self.shift_u if which == "u" else self.shift_s
        return torch.zeros(self.dim, dtype=torch.float64, device=self.sum_u.device) if shift is None else shift.double().to(self.sum_u.device)

    def mean_u(self) -> torch.Tensor:
        return self.sum_u / self.n + self._shift("u")

    def mean_s(self) -> torch.Tensor:
        return self.sum_s / self.n + self._shift("s") if self.paired else self.mean_u()

    def cov_uu(self) -> torch.Tensor:
        mu = self.sum_u / self.n  # shifted mean: the covariance does not depend on the shift
        return self.gram_uu / self.n - torch.outer(mu, mu)

    def cov_su(self) -> torch.Tensor:
        """Centered cross-covariance E[(s - mean s)(u - mean u)^T]."""
        if not self.paired:
            return self.cov_uu()
        return self.cross_su / self.n - torch.outer(self.sum_s / self.n, self.sum_u / self.n)

    def tensors(self) -> list[torch.Tensor]:
        return [t for t in (self.sum_u, self.gram_uu, self.sum_s, self.cross_su) if t is not None]

    def all_reduce(self) -> None:
        """Sum the statistics over all processes of a torch.distributed group (no-op when not distributed).

        Every process shifted its frames by process 0's shift (`_common`), so the shifted sums add up as they
        are: with the windows split at batch boundaries, each batch's float32 products are those one process
        computes, and only the float64 summation order differs.
        """
        if not _distributed():
            return
        n = torch.tensor([float(self.n)], dtype=torch.float64, device=self.sum_u.device)
        for t in [n, *self.tensors()]:
            torch.distributed.all_reduce(t)
        self.n = int(n.item())


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _common(shift: torch.Tensor) -> torch.Tensor:
    """Process 0's shift in every process (its first batch is one process's first batch); as is alone."""
    if _distributed():
        torch.distributed.broadcast(shift, src=0)
    return shift


def batches(n: int, batch_size: int) -> list[slice]:
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def attention_context(attn: nn.Module, a: torch.Tensor) -> torch.Tensor:
    """Whisper self-attention up to (not including) out_proj, for a (batch, frames, d) normed input.

    Same operations and order as transformers' WhisperAttention (scaling applied to q before the product).
    """
    bsz, frames, _ = a.shape
    heads, head_dim = attn.num_heads, attn.head_dim

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.view(bsz, frames, heads, head_dim).transpose(1, 2)

    q = split(attn.q_proj(a) * attn.scaling)
    k, v = split(attn.k_proj(a)), split(attn.v_proj(a))
    ctx = nn.functional.scaled_dot_product_attention(q, k, v, scale=1.0)
    return ctx.transpose(1, 2).reshape(bsz, frames, heads * head_dim)


def mlp(layer: nn.Module, h: torch.Tensor) -> torch.Tensor:
    return layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(h))))


def run_layer(layer: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """One Whisper encoder layer (pre-norm attention, then pre-norm MLP), written out by stage."""
    h = h + layer.self_attn.out_proj(attention_context(layer.self_attn, layer.self_attn_layer_norm(h)))
    return h + mlp(layer, h)


# A fit callback receives the projection names that share `cov` and replaces them in the compressed layer.
FitFn = Callable[[Sequence[str], Covariance], None]

# The stages of a Whisper encoder layer in data-flow order (GPTQModel's `module_tree`): the projections of a
# stage share one input and one Covariance, and each stage sees the compressed projections of those before it.
LAYER_STAGES: tuple[tuple[str, ...], ...] = (("q_proj", "k_proj", "v_proj"), ("out_proj",), ("fc1",), ("fc2",))


class _LayerPass:
    """One layer's hidden states, moved through the stages of LAYER_STAGES by batch.

    Buffers are overwritten in place: only one layer's worth of hidden states is ever kept per path.
    """

    def __init__(self, original: nn.Module, compressed: nn.Module, h_o: torch.Tensor, h_c, batch_size: int):
        self.original, self.compressed, self.h_o, self.h_c = original, compressed, h_o, h_c
        self.device = next(original.parameters()).device
        self.slices = batches(h_o.shape[0], batch_size)

    def load(self, buffer: torch.Tensor, sl: slice) -> torch.Tensor:
        return buffer[sl].to(self.device)

    def new_stats(self, module: nn.Linear, paired: bool) -> Covariance:
        dim = module.in_features if input_side(module) else module.out_features
        return Covariance(dim, paired=paired, device=self.device)

    def gather(self, stage: tuple[str, ...]) -> Covariance:
        return getattr(self, "gather_" + "_".join(name.removesuffix("_proj") for name in stage))()


class OriginalPass(_LayerPass):
    """One-shot: statistics of every projection's input on the original layer (LiteASR's calibration)."""

    def gather_q_k_v(self) -> Covariance:
        stats = self.new_stats(self.original.self_attn.q_proj, paired=False)
        for sl in self.slices:
            stats.update(self.original.self_attn_layer_norm(self.load(self.h_o, sl)))
        return stats

    def gather_out(self) -> Covariance:
        attn = self.original.self_attn
        stats = self.new_stats(attn.out_proj, paired=False)
        self.ctx = torch.empty_like(self.h_o)
        for sl in self.slices:
            ctx = attention_context(attn, self.original.self_attn_layer_norm(self.load(self.h_o, sl)))
            stats.update(ctx)
            self.ctx[sl] = ctx.to(self.ctx.device)
        return stats

    def gather_fc1(self) -> Covariance:
        stats = self.new_stats(self.original.fc1, paired=False)
        for sl in self.slices:  # the post-attention residual replaces the layer input
            h = self.load(self.h_o, sl) + self.original.self_attn.out_proj(self.load(self.ctx, sl))
            self.h_o[sl] = h.to(self.h_o.device)
            stats.update(self.original.final_layer_norm(h))
        del self.ctx
        return stats

    def gather_fc2(self) -> Covariance:
        stats = self.new_stats(self.original.fc2, paired=False)  # output side (d_out < d_in)
        for sl in self.slices:
            y = mlp(self.original, self.load(self.h_o, sl))
            stats.update(y)
            self.h_o[sl] = (self.load(self.h_o, sl) + y).to(self.h_o.device)
        return stats

    def finish(self) -> tuple[torch.Tensor, None]:
        return self.h_o, None


class PairedPass(_LayerPass):
    """Sequential: the original and the compressed path side by side, statistics paired frame by frame."""

    def gather_q_k_v(self) -> Covariance:
        norm = self.original.self_attn_layer_norm  # layer norms are not compressed: one for both paths
        stats = self.new_stats(self.original.self_attn.q_proj, paired=True)
        for sl in self.slices:
            stats.update(norm(self.load(self.h_c, sl)), norm(self.load(self.h_o, sl)))
        return stats

    def gather_out(self) -> Covariance:
        """out_proj on the attention context of the compressed q/k/v. The original path moves on to the
        post-attention residual; the compressed context is kept (one buffer) for fc1."""
        attn_o, attn_c = self.original.self_attn, self.compressed.self_attn
        stats = self.new_stats(attn_o.out_proj, paired=True)
        self.ctx = torch.empty_like(self.h_c)
        for sl in self.slices:
            ho = self.load(self.h_o, sl)
            ctx_o = attention_context(attn_o, self.original.self_attn_layer_norm(ho))
            ctx_c = attention_context(attn_c, self.compressed.self_attn_layer_norm(self.load(self.h_c, sl)))
            stats.update(ctx_c, ctx_o)
            self.ctx[sl] = ctx_c.to(self.ctx.device)
            self.h_o[sl] = (ho + attn_o.out_proj(ctx_o)).to(self.h_o.device)
        return stats

    def gather_fc1(self) -> Covariance:
        """fc1 on the normed post-attention residual (the compressed path now uses the fitted out_proj)."""
        stats = self.new_stats(self.original.fc1, paired=True)
        for sl in self.slices:
            h = self.load(self.h_c, sl) + self.compressed.self_attn.out_proj(self.load(self.ctx, sl))
            self.h_c[sl] = h.to(self.h_c.device)
            stats.update(self.compressed.final_layer_norm(h),
                         self.original.final_layer_norm(self.load(self.h_o, sl)))
        del self.ctx
        return stats

    def gather_fc2(self) -> Covariance:
        """fc2 on its output side (d_out < d_in): the dense fc2 applied to the compressed path's activations,
        paired with the original output. The original path completes its layer here."""
        c = self.compressed
        stats = self.new_stats(self.original.fc2, paired=True)
        for sl in self.slices:
            y_o = mlp(self.original, self.load(self.h_o, sl))
            z = self.original.fc2(c.activation_fn(c.fc1(c.final_layer_norm(self.load(self.h_c, sl)))))
            stats.update(z, y_o)
            self.h_o[sl] = (self.load(self.h_o, sl) + y_o).to(self.h_o.device)
        return stats

    def finish(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The compressed path completes its layer with the fitted MLP."""
        for sl in self.slices:
            hc = self.load(self.h_c, sl)
            self.h_c[sl] = (hc + mlp(self.compressed, hc)).to(self.h_c.device)
        return self.h_o, self.h_c


@torch.inference_mode()
def calibrate_layer(
    original: nn.Module,
    compressed: nn.Module,
    hidden_original: torch.Tensor,
    hidden_compressed: torch.Tensor | None,
    fit: FitFn,
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gather statistics and fit the six projections of one layer, stage by stage (LAYER_STAGES); return the
    next inputs (original path, compressed path or None).

    `compressed` starts as a copy of `original`; `fit` replaces its projections, so each projection is fitted on
    inputs that already went through the compressed projections before it, within the layer as across layers.
    One-shot mode (`hidden_compressed is None`) fits every projection on the original path.
    """
    pass_type = OriginalPass if hidden_compressed is None else PairedPass
    layer_pass = pass_type(original, compressed, hidden_original, hidden_compressed, batch_size)
    for stage in LAYER_STAGES:
        fit(stage, layer_pass.gather(stage))
    return layer_pass.finish()


@torch.inference_mode()
def encoder_inputs(encoder: nn.Module, features: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Hidden states entering the first encoder layer: convolutions + GELU + positional embeddings."""
    device = next(encoder.parameters()).device
    dtype = next(encoder.parameters()).dtype
    chunks = []
    for sl in batches(features.shape[0], batch_size):
        x = features[sl].to(device=device, dtype=dtype)
        x = nn.functional.gelu(encoder.conv1(x))
        x = nn.functional.gelu(encoder.conv2(x)).permute(0, 2, 1)
        chunks.append((x + encoder.embed_positions.weight[: x.shape[1]]).cpu())
    return torch.cat(chunks)

"""Calibration: sufficient statistics of the encoder projections, gathered layer by layer.

Nothing here keeps activations beyond one layer's inputs for the calibration batch (as sequential quantizers
do): each projection accumulates count, sums and a (cross-)Gram matrix in float64, which is all that PCA and
reduced-rank regression need. The statistics of several processes add up (`Covariance.all_reduce`).

Sequential mode pairs two paths through the encoder: the original one (targets) and the compressed one
(layers before the current one already factorized). For each projection we keep, frame by frame,
    input side  (d_in <= d_out: q, k, v, out_proj, fc1):  u = compressed-path input,   s = original-path input
    output side (d_out <  d_in: fc2):                     u = W x_c + b (dense output), s = original output
so that a factorization can aim at the original output from the compressed input (see factorize.py), with the
matrix that is cheaper to accumulate. In one-shot mode both paths are the original one and s = u.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
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


@torch.inference_mode()
def calibrate_layer(
    original: nn.Module,
    compressed: nn.Module,
    hidden_original: torch.Tensor,
    hidden_compressed: torch.Tensor | None,
    fit: FitFn,
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gather statistics and fit the six projections of one layer, stage by stage; return the next inputs.

    `compressed` starts as a copy of `original`; `fit` replaces its projections. Stages follow the data
    flow (q/k/v -> out_proj -> fc1 -> fc2), so each projection is fitted on inputs that already went
    through the compressed projections before it — within the layer as across layers. One-shot mode
    (`hidden_compressed is None`) fits every projection on the original path.
    Buffers are overwritten in place: only one layer's worth of hidden states is ever kept per path.
    Returns (next original inputs, next compressed inputs or None).
    """
    h_o, h_c = hidden_original, hidden_compressed
    paired = h_c is not None
    device = next(original.parameters()).device
    slices = batches(h_o.shape[0], batch_size)
    attn_o, attn_c = original.self_attn, compressed.self_attn

    def new_stats(module: nn.Linear) -> Covariance:
        dim = module.in_features if input_side(module) else module.out_features
        return Covariance(dim, paired=paired, device=device)

    def load(buffer: torch.Tensor, sl: slice) -> torch.Tensor:
        return buffer[sl].to(device)

    # Stage 1: q, k, v share their input, the normed layer input.
    stats = new_stats(attn_o.q_proj)
    for sl in slices:
        a_o = original.self_attn_layer_norm(load(h_o, sl))
        stats.update(original.self_attn_layer_norm(load(h_c, sl)), a_o) if paired else stats.update(a_o)
    fit(("q_proj", "k_proj", "v_proj"), stats)

    # Stage 2: out_proj, on the attention context of the compressed q/k/v. The original path moves on to
    # the post-attention residual; the compressed context is kept (one buffer) for stage 3.
    stats = new_stats(attn_o.out_proj)
    ctx_buffer = torch.empty_like(h_c if paired else h_o)
    for sl in slices:
        ho = load(h_o, sl)
        ctx_o = attention_context(attn_o, original.self_attn_layer_norm(ho))
        if paired:
            ctx_c = attention_context(attn_c, compressed.self_attn_layer_norm(load(h_c, sl)))
            stats.update(ctx_c, ctx_o)
            ctx_buffer[sl] = ctx_c.to(ctx_buffer.device)
        else:
            stats.update(ctx_o)
            ctx_buffer[sl] = ctx_o.to(ctx_buffer.device)
        if paired:
            h_o[sl] = (ho + attn_o.out_proj(ctx_o)).to(h_o.device)
    fit(("out_proj",), stats)

    # Stage 3: fc1, on the normed post-attention residual (compressed path now uses the fitted out_proj).
    stats = new_stats(original.fc1)
    h2 = h_c if paired else h_o  # the residual stream the stats are taken on
    for sl in slices:
        h2_sl = load(h2, sl) + (attn_c if paired else attn_o).out_proj(load(ctx_buffer, sl))
        h2[sl] = h2_sl.to(h2.device)
        b = (compressed if paired else original).final_layer_norm(h2_sl)
        stats.update(b, original.final_layer_norm(load(h_o, sl))) if paired else stats.update(b)
    del ctx_buffer
    fit(("fc1",), stats)

    # Stage 4: fc2, statistics on its output side (d_out < d_in): the dense fc2 applied to the compressed
    # path's activations, paired with the original output. The original path completes its layer here.
    stats = new_stats(original.fc2)
    for sl in slices:
        y_o = mlp(original, load(h_o, sl))
        if paired:
            z = original.fc2(compressed.activation_fn(compressed.fc1(compressed.final_layer_norm(load(h_c, sl)))))
            stats.update(z, y_o)
        else:
            stats.update(y_o)
        h_o[sl] = (load(h_o, sl) + y_o).to(h_o.device)
    fit(("fc2",), stats)
    if not paired:
        return h_o, None

    # Stage 5: the compressed path completes its layer with the fitted MLP.
    for sl in slices:
        hc = load(h_c, sl)
        h_c[sl] = (hc + mlp(compressed, hc)).to(h_c.device)
    return h_o, h_c


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


def pack_groups(lengths: Sequence[int], limit: int, gap: int, keys: Sequence | None = None) -> list[list[int]]:
    """Indices of consecutive clips packed into windows of at most `limit` samples (`gap` samples between two
    clips); a clip longer than `limit` stays alone. With `keys`, only clips of equal key share a window."""
    groups: list[list[int]] = []
    length = 0
    for i, n in enumerate(lengths):
        fits = groups and length + gap + n <= limit
        if fits and (keys is None or keys[groups[-1][0]] == keys[i]):
            groups[-1].append(i)
            length += gap + n
        else:
            groups.append([i])
            length = n
    return groups


def pack_clips(arrays: Sequence[np.ndarray], seconds: float, gap: float = 0.5,
               sampling_rate: int = 16000) -> list[np.ndarray]:
    """Concatenate consecutive clips (with `gap` s of silence between them) into windows of at most `seconds`.

    A 30 s window holding one 3 s utterance is 90% padding: the statistics then mostly describe the padding,
    and every window costs a full encoder pass. Packed windows carry the same speech in a fraction of the
    passes, and still end in padding as long as `seconds` < 30. A clip longer than `seconds` stays alone.
    """
    arrays = [np.asarray(clip, dtype=np.float32) for clip in arrays]
    silence = np.zeros(int(gap * sampling_rate), dtype=np.float32)
    groups = pack_groups([len(a) for a in arrays], int(seconds * sampling_rate), len(silence))
    return [join_clips([arrays[i] for i in group], silence) for group in groups]


def join_clips(arrays: Sequence[np.ndarray], silence: np.ndarray) -> np.ndarray:
    parts = [arrays[0]]
    for clip in arrays[1:]:
        parts += [silence, clip]
    return np.concatenate(parts)


def log_mel_features(
    arrays: Sequence[np.ndarray], feature_extractor, sampling_rate: int = 16000
) -> torch.Tensor:
    """Whisper's own 30 s log-mel windows (padded or truncated) for each 16 kHz clip."""
    feats = feature_extractor(
        list(arrays), sampling_rate=sampling_rate, return_tensors="pt", padding="max_length"
    ).input_features
    return feats

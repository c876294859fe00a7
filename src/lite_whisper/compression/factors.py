"""Factorization: calibration statistics -> principal components -> (weight1, weight2, bias).

LiteASR keeps the top-k principal components V_k of a projection's centered outputs Y = X W^T + b and
replaces W by W^T V_k (d_in x k) then V_k^T (k x d_out), with bias mean + (b - mean) V_k V_k^T.

Sequentially (inputs come from already-compressed layers) we aim at the ORIGINAL outputs from the
COMPRESSED inputs: reduced-rank regression. With u the regressor (compressed input, or for output-side
statistics the dense output on the compressed path), t the original output and A0 the map that produces
t from u when nothing is compressed (W, or the identity):
    A = (S_tu + d A0) (S_uu + d I)^-1        ridge towards A0, so thin directions fall back to the original
    F = A S_uu A^T                            covariance of the fitted outputs; its eigenvectors are V
    weight1 = (A W_u)^T V_k, weight2 = V_k^T, bias = mean_t + V_k V_k^T (b_u - A mean_u) ...
With one-shot statistics (u = s) this reduces exactly to LiteASR's rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lite_whisper.compression.statistics import Covariance, input_side

# Ridge strength relative to the mean variance of the regressor (as GPTQ's damping).
DAMPING = 1e-2


@dataclass
class Spectrum:
    """Principal directions of one projection's (fitted) outputs, ready to be cut at any rank.

    Output model: y = A (W_u x + b_u) + c, where W_u = W, b_u = b for output-side statistics and
    W_u = I, b_u = 0 (u is the input itself) for input-side statistics.
    """

    eigenvalues: torch.Tensor  # (r,) descending, float64
    eigenvectors: torch.Tensor  # (d_out, r), float64
    A: torch.Tensor  # (d_out, d_u)
    mean_u: torch.Tensor  # (d_u,)
    mean_t: torch.Tensor  # (d_out,)
    weight: torch.Tensor  # original W (d_out, d_in), float64
    bias: torch.Tensor  # original b (d_out,), zeros if none
    output_side: bool

    @property
    def total_energy(self) -> float:
        return float(self.eigenvalues.sum())

    def energy_kept(self, rank: int | None) -> float:
        """Fraction of the fitted output variance that rank `rank` keeps (None = dense = 1)."""
        if rank is None or self.total_energy <= 0:
            return 1.0
        return float(self.eigenvalues[:rank].sum() / self.total_energy)

    def tail(self, rank: int | None) -> float:
        """Variance (per frame, summed over output dims) lost by keeping `rank` components."""
        return 0.0 if rank is None else float(self.eigenvalues[rank:].sum())

    def factors(self, rank: int, basis: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(weight1 (d_in, k), weight2 (k, d_out), bias (d_out,)) in float64. With `basis` (d_out, k, orthonormal
        columns) the output directions are given (e.g. the one-shot PCA's) and only the map onto them is fitted."""
        v = self.eigenvectors[:, :rank] if basis is None else basis.to(self.A)
        a_k = v @ (v.T @ self.A)  # rank-k map from u to the output
        a_full_in = self.A @ self.weight if self.output_side else self.A  # u = W x + b  vs  u = x
        weight1 = a_full_in.T @ v
        b_u = self.bias if self.output_side else torch.zeros_like(self.mean_u)
        bias = self.mean_t + a_k @ (b_u - self.mean_u)
        return weight1, v.T.contiguous(), bias


def spectrum(linear: nn.Linear, cov: Covariance, damping: float = DAMPING, method: str = "regression") -> Spectrum:
    """PCA (one-shot statistics), or for paired statistics one of two sequential fits:

    "projector": keep W, choose the subspace V that best reproduces the original outputs from the compressed
        path's outputs z = W x_c + b: maximize tr V^T (S_oz + S_zo - S_zz) V. No inverse, nothing to overfit.
    "regression": reduced-rank regression with a ridge towards W (more freedom, needs more calibration data).
    """
    w = linear.weight.detach().double().to(cov.gram_uu.device)
    b = linear.bias.detach().double().to(w.device) if linear.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
    out_side = not input_side(linear)
    s_uu = cov.cov_uu()
    if out_side:  # u and t both live in the output space; the identity maps one onto the other
        a0 = torch.eye(w.shape[0], dtype=w.dtype, device=w.device)
        mean_t = cov.mean_s()
        s_tu = cov.cov_su()
    else:  # u is the projection's input; the original output is t = W s + b
        a0 = w
        mean_t = w @ cov.mean_s() + b
        s_tu = w @ cov.cov_su()
    if not cov.paired:
        eigenvalues, eigenvectors = _fitted_components(a0, s_uu)
        return Spectrum(eigenvalues, eigenvectors, a0, cov.mean_u(), mean_t, w, b, out_side)
    if method == "projector":
        s_oz = s_tu @ a0.T  # cov(original output, compressed-path output)
        s_zz = a0 @ s_uu @ a0.T
        evals, evecs = torch.linalg.eigh(s_oz + s_oz.T - s_zz)
        order = evals.argsort(descending=True)
        return Spectrum(evals[order].clamp_min(0), evecs[:, order], a0, cov.mean_u(), mean_t, w, b, out_side)
    delta = damping * float(s_uu.diagonal().mean().clamp_min(1e-12))
    eye = torch.eye(s_uu.shape[0], dtype=s_uu.dtype, device=s_uu.device)
    a = torch.linalg.solve(s_uu + delta * eye, (s_tu + delta * a0).T).T
    eigenvalues, eigenvectors = _fitted_components(a, s_uu)
    return Spectrum(eigenvalues, eigenvectors, a, cov.mean_u(), mean_t, w, b, out_side)


def _fitted_components(a: torch.Tensor, s_uu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decomposition of F = A S_uu A^T, eigenvalues descending.

    Where F is no larger than S_uu (every projection but fc1), one symmetric eigensolver call on F itself: 2-3x
    faster than the SVD route. fc1 (F four times wider than S_uu) goes through the smaller side instead:
    F = M M^T with M = A S_uu^(1/2), whose left singular vectors are F's eigenvectors."""
    if a.shape[0] <= a.shape[1]:
        f = a @ s_uu @ a.T
        evals, evecs = torch.linalg.eigh((f + f.T) / 2)
        return evals.flip(0).clamp_min(0), evecs.flip(1)
    evals, evecs = torch.linalg.eigh(s_uu)
    m = a @ (evecs * evals.clamp_min(0).sqrt())
    u, s, _ = torch.linalg.svd(m, full_matrices=False)
    return s.square(), u


def reconstruct(weight1: torch.Tensor, weight2: torch.Tensor) -> torch.Tensor:
    """The dense (d_out, d_in) weight a factor pair stands for."""
    return (weight1 @ weight2).T

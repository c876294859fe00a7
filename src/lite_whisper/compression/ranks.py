"""Rank choice: energy thresholds (LiteASR) and budgets (parameters or FLOPs) with a sensitivity-aware,
greedy allocation across all layers and projections.

A rank of `None` means the projection stays dense. Ranks are multiples of `multiple` (16 by default, as
LiteASR), and a projection stays dense where its factors would cost about as much as the dense weight
(`DENSE_RATIO`): two thin GEMMs at nearly the dense FLOPs are slower than one.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Callable, Hashable, Mapping

from lite_whisper.compression.types import Rank

# Low rank only where k (d_in + d_out) <= DENSE_RATIO * d_in * d_out.
DENSE_RATIO = 0.9



@dataclass(frozen=True)
class Shape:
    d_in: int
    d_out: int

    def weight_params(self, rank: Rank) -> int:
        """Weight parameters of the projection at `rank` (biases are the same either way)."""
        return self.d_in * self.d_out if rank is None else rank * (self.d_in + self.d_out)

    def max_rank(self, multiple: int) -> int:
        """Largest multiple of `multiple` at which low rank still pays (0 if none does)."""
        k = DENSE_RATIO * self.d_in * self.d_out / (self.d_in + self.d_out)
        return int(k // multiple) * multiple


def parse_threshold(text: str) -> tuple[float, float]:
    """`A:M` (or a single value for both) -> (attention energy, MLP energy), each in (0, 1]."""
    parts = text.split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or not all(0 < v <= 1 for v in values):
        raise ValueError(
            f"--threshold {text!r}: expected ATTENTION:MLP energy fractions in (0, 1], e.g. 0.99:0.999"
        )
    return values[0], values[1]


def threshold_rank(eigenvalues, energy: float, shape: Shape, multiple: int) -> Rank:
    """LiteASR's rule: smallest k keeping `energy` of the variance, rounded up to `multiple`; dense if that
    does not pay (or keeps everything)."""
    total = float(eigenvalues.sum())
    if energy >= 1.0 or total <= 0:
        return None if energy >= 1.0 else multiple
    cumulative = eigenvalues.cumsum(0) / total
    k = int((cumulative < energy - 1e-12).sum()) + 1
    k = max(multiple, math.ceil(k / multiple) * multiple)
    return k if k <= shape.max_rank(multiple) else None


@dataclass
class Candidate:
    """What the allocator knows of one projection: its shape, its cost per unit, and its loss curve."""

    shape: Shape
    loss: Callable[[Rank], float]  # predicted increase of the final loss at a rank (None = dense = 0)
    cost_per_param: float = 1.0  # parameters: 1; FLOPs: 2 * frames


def allocate(
    candidates: Mapping[Hashable, Candidate],
    budget: float,
    multiple: int,
    fixed: Mapping[Hashable, Rank] | None = None,
    caps: Mapping[Hashable, Rank] | None = None,
) -> dict[Hashable, Rank]:
    """Ranks minimizing the summed predicted loss with summed cost <= `budget`.

    Greedy on the best loss decrease per unit of cost, from the smallest rank up (optimal for convex
    loss curves, which sorted eigenvalue tails are); the last step of a projection is the jump to dense.
    `fixed` projections keep their rank and their cost counts against the budget; `caps` bound the ranks
    that projections may grow to (None: no bound; iterative rounds only ever shrink ranks).
    Raises ValueError if even the smallest ranks do not fit.
    """
    fixed, caps = dict(fixed or {}), {k: v for k, v in (caps or {}).items() if v is not None}
    ranks: dict[Hashable, Rank] = dict(fixed)
    spent = sum(c.cost_per_param * c.shape.weight_params(fixed[k]) for k, c in candidates.items() if k in fixed)
    free = {k: c for k, c in candidates.items() if k not in fixed}
    for key, cand in free.items():
        ranks[key] = multiple if cand.shape.max_rank(multiple) >= multiple else None
        if key in caps:
            ranks[key] = min(caps[key], multiple)
        spent += cand.cost_per_param * cand.shape.weight_params(ranks[key])
    if spent > budget * (1 + 1e-9):
        raise ValueError(
            f"the budget is too small: even rank {multiple} everywhere costs {spent:.4g} > {budget:.4g}; "
            "ask for a larger target or a smaller --rank-multiple"
        )

    def next_step(key: Hashable) -> tuple[float, Rank, float] | None:
        cand, rank = free[key], ranks[key]
        if rank is None:
            return None
        nxt = rank + multiple if rank + multiple <= cand.shape.max_rank(multiple) else None
        if key in caps and (nxt is None or nxt > caps[key]):
            return None  # a capped projection neither grows past its cap nor becomes dense
        cost = cand.cost_per_param * (cand.shape.weight_params(nxt) - cand.shape.weight_params(rank))
        gain = cand.loss(rank) - cand.loss(nxt)
        return gain / max(cost, 1e-12), nxt, cost

    heap = []
    for i, key in enumerate(free):
        step = next_step(key)
        if step:
            heapq.heappush(heap, (-step[0], i, key, step[1], step[2]))
    while heap:
        _, i, key, nxt, cost = heapq.heappop(heap)
        if spent + cost > budget:
            continue  # this projection cannot grow further; others with cheaper steps still may
        ranks[key] = nxt
        spent += cost
        step = next_step(key)
        if step:
            heapq.heappush(heap, (-step[0], i, key, step[1], step[2]))
    return ranks

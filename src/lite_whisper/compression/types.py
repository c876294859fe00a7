"""The types every step of the method shares: a projection's key, its rank, its factors, and tables of them.

Only annotations: nothing here imports torch at run time (the CLI checks its flags before torch is loaded)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    import torch

Key = tuple[int, str]
"""(encoder layer index, projection name), e.g. (3, "fc1")."""

Rank = int | None
"""A projection's rank; None: it stays dense."""

Factors = tuple["torch.Tensor", "torch.Tensor", "torch.Tensor | None"]
"""One projection's factors (weight1 [in, r], weight2 [r, out], bias); a bias of None means zeros."""

FactorTable = Mapping[Key, Factors]
"""Factors of every factorized projection, by key."""

RankTable = Mapping[Key, Rank]
"""Ranks of every projection, by key."""

__all__ = ["FactorTable", "Factors", "Key", "Rank", "RankTable"]

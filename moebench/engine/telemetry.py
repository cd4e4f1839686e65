"""Router telemetry: tokens routed to each expert, per layer, prefill and decode apart.

The MoE layers add to one `RouterStats` owned by the model; `snapshot()` freezes it into
`RouterCounts` (plain lists, JSON-ready). Dense layers (DeepSeek's first layers) keep an empty
list so that list index == layer index. `load_cv` and `usage_entropy` summarise balance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

PHASES = ("prefill", "decode")


@dataclass(frozen=True)
class RouterCounts:
    """Tokens per expert per layer since the last reset: `prefill[layer][expert]`."""

    prefill: list[list[int]]
    decode: list[list[int]]

    def as_dict(self) -> dict[str, list[list[int]]]:
        """`{"prefill": [...], "decode": [...]}` — the shape `Completion.router` carries."""
        return {"prefill": [list(c) for c in self.prefill], "decode": [list(c) for c in self.decode]}

    def total(self) -> list[list[int]]:
        """Prefill + decode per layer and expert."""
        return [[a + b for a, b in zip(p, d)] for p, d in zip(self.prefill, self.decode)]


class RouterStats:
    """Mutable per-layer counters the MoE layers write to while the model runs."""

    def __init__(self, experts_per_layer: Sequence[int]) -> None:
        self.experts_per_layer = list(experts_per_layer)
        #: which bucket new counts go to; `generate` flips it after the prefill
        self.phase = "prefill"
        self.enabled = True
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        self._counts = {p: [[0] * n for n in self.experts_per_layer] for p in PHASES}

    def add_ids(self, layer: int, expert_ids: Sequence[int]) -> None:
        """Count one token's chosen experts (the batch-1 decode path already has them as ints)."""
        if self.enabled:
            row = self._counts[self.phase][layer]
            for e in expert_ids:
                row[e] += 1

    def add_counts(self, layer: int, counts: Sequence[int]) -> None:
        """Add per-expert token counts (the prefill path computes them with bincount)."""
        if self.enabled:
            row = self._counts[self.phase][layer]
            for e, n in enumerate(counts):
                row[e] += n

    def snapshot(self) -> RouterCounts:
        """A frozen copy of the counters."""
        return RouterCounts(*(([list(r) for r in self._counts[p]]) for p in PHASES))


def load_cv(counts: Sequence[int]) -> float:
    """Coefficient of variation (population std / mean) of per-expert counts; 0 = perfect balance.

    NaN when nothing was routed.
    """
    if not counts or sum(counts) == 0:
        return float("nan")
    mean = sum(counts) / len(counts)
    return math.sqrt(sum((c - mean) ** 2 for c in counts) / len(counts)) / mean


def usage_entropy(counts: Sequence[int], normalized: bool = True) -> float:
    """Entropy of the expert-usage distribution, in bits, or divided by log2(E) when normalized.

    1.0 (normalized) means tokens spread evenly over all experts; NaN when nothing was routed.
    """
    total = sum(counts)
    if not counts or total == 0:
        return float("nan")
    bits = -sum(c / total * math.log2(c / total) for c in counts if c)
    return bits / math.log2(len(counts)) if normalized and len(counts) > 1 else bits

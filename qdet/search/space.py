"""The co-design search space: typed choices per dimension, a trial's sampled configuration, the hand-designed
points, and the space's cheapest corner (the feasibility precheck's model).

Every dimension is categorical, so Optuna's samplers (NSGA-II, multi-objective TPE) see the same finite space on
every worker and a trial's parameters are exactly what it trained: the architecture (tinydet's full 3x3 convs or
mobiledet's depthwise-separable variant), the body's weight and activation bits, the first conv's and the head's
weight bits (the usual high-precision ends), the width multiplier, the structured pruning ratio and the low-rank
energy (1.0: no factorization).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from quant_models.models import ARCHITECTURES


class SearchError(ValueError):
    """A search that cannot start or go on as asked (a space without choices, a search folder holding another
    study, a space with no point that fits the board, ...); the message says what to change."""


# Architectures with one output at stride 8 and tinydet's anchors: they distil from one tinydet teacher.
SEARCH_ARCHS = ("tinydet", "mobiledet")


@dataclass(frozen=True)
class SearchSpace:
    """The choices of each dimension (tuples, searched as categorical parameters)."""

    archs: tuple[str, ...] = SEARCH_ARCHS
    weight_bits: tuple[int, ...] = (2, 3, 4)
    act_bits: tuple[int, ...] = (2, 3, 4)
    first_bits: tuple[int, ...] = (4, 8)  # the first conv's weights (its input is the 8-bit pixel)
    last_bits: tuple[int, ...] = (4, 8)  # the head's weights
    widths: tuple[float, ...] = (0.5, 0.75, 1.0)
    prune_ratios: tuple[float, ...] = (0.0,)  # structured channel pruning (quant_models.compress.prune_model)
    rank_energies: tuple[float, ...] = (1.0,)  # low-rank factorization keeping this energy; 1.0: none

    def __post_init__(self) -> None:
        for f in fields(self):
            values = getattr(self, f.name)
            if not values:
                raise SearchError(f"search space: {f.name} has no choices; give at least one")
            if len(set(values)) != len(values):
                raise SearchError(f"search space: {f.name} repeats a choice: {list(values)}")
        unknown = [a for a in self.archs if a not in SEARCH_ARCHS]
        if unknown:
            known = ", ".join(a for a in SEARCH_ARCHS if a in ARCHITECTURES)
            raise SearchError(f"search space: architecture {', '.join(unknown)} cannot be searched (it needs one "
                             f"stride-8 output to distil from the tinydet teacher); choose from {known}")
        for name in ("weight_bits", "act_bits", "first_bits", "last_bits"):
            bad = [b for b in getattr(self, name) if not 2 <= b <= 8]
            if bad:
                raise SearchError(f"search space: {name} {bad} outside 2..8 bits")
        if any(w <= 0 for w in self.widths):
            raise SearchError(f"search space: widths must be > 0, got {list(self.widths)}")
        if any(not 0.0 <= r < 1.0 for r in self.prune_ratios):
            raise SearchError(f"search space: prune ratios must be in [0, 1), got {list(self.prune_ratios)}")
        if any(not 0.0 < e <= 1.0 for e in self.rank_energies):
            raise SearchError(f"search space: rank energies must be in (0, 1] (1.0: no factorization), got "
                             f"{list(self.rank_energies)}")

    @property
    def size(self) -> int:
        """How many distinct configurations the space holds."""
        n = 1
        for f in fields(self):
            n *= len(getattr(self, f.name))
        return n

    def to_dict(self) -> dict[str, list[Any]]:
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSpace:
        return cls(**{f.name: tuple(data[f.name]) for f in fields(cls) if f.name in data})

    def cheapest(self, arch: str) -> TrialConfig:
        """The corner of the space with the fewest bits, the narrowest width, the most pruning and the lowest rank,
        for ``arch``: if it cannot fit the board, nothing of that architecture can."""
        return TrialConfig(arch=arch, weight_bits=min(self.weight_bits), act_bits=min(self.act_bits),
                           first_bits=min(self.first_bits), last_bits=min(self.last_bits), width=min(self.widths),
                           prune=max(self.prune_ratios), rank_energy=min(self.rank_energies))

    def contains(self, cfg: TrialConfig) -> bool:
        """Whether every value of ``cfg`` is one of this space's choices."""
        return all(v in getattr(self, _DIMENSIONS[k]) for k, v in cfg.params().items())


# Trial parameter name -> the SearchSpace field holding its choices.
_DIMENSIONS = {"arch": "archs", "weight_bits": "weight_bits", "act_bits": "act_bits", "first_bits": "first_bits",
               "last_bits": "last_bits", "width": "widths", "prune": "prune_ratios", "rank_energy": "rank_energies"}


@dataclass(frozen=True)
class TrialConfig:
    """One point of the space: what a trial trains, compresses and builds."""

    arch: str
    weight_bits: int
    act_bits: int
    first_bits: int
    last_bits: int
    width: float
    prune: float = 0.0
    rank_energy: float = 1.0

    @property
    def bits(self) -> str:
        """The bit spec of the model (``w2a3,first=8,last=4``); ``first``/``last`` only where they differ."""
        spec = f"w{self.weight_bits}a{self.act_bits}"
        if self.first_bits != self.weight_bits:
            spec += f",first={self.first_bits}"
        if self.last_bits != self.weight_bits:
            spec += f",last={self.last_bits}"
        return spec

    @property
    def compressed(self) -> bool:
        """Whether the trial prunes or factorizes after QAT (and fine-tunes)."""
        return self.prune > 0 or self.rank_energy < 1.0

    def params(self) -> dict[str, Any]:
        """As Optuna parameters (the names :func:`sample` suggests)."""
        return asdict(self)

    def label(self) -> str:
        """A short human name: ``mobiledet w2a3,first=8 x0.75 prune 0.25 rank 0.9``."""
        text = f"{self.arch} {self.bits} x{self.width:g}"
        if self.prune:
            text += f" prune {self.prune:g}"
        if self.rank_energy < 1.0:
            text += f" rank {self.rank_energy:g}"
        return text


def sample(trial: Any, space: SearchSpace) -> TrialConfig:
    """The configuration an Optuna trial suggests from ``space`` (categorical parameters, one per dimension)."""
    return TrialConfig(**{name: trial.suggest_categorical(name, list(getattr(space, field)))
                          for name, field in _DIMENSIONS.items()})


def zoo_points(space: SearchSpace) -> list[tuple[str, TrialConfig]]:
    """The hand-designed models the search measures first on its own budget, those the space holds: tinydet W4A4
    and mobiledet W4A4 at width 1, no pruning, no factorization."""
    points = []
    for arch in ("tinydet", "mobiledet"):
        cfg = TrialConfig(arch=arch, weight_bits=4, act_bits=4, first_bits=4, last_bits=4, width=1.0)
        if space.contains(cfg):
            points.append((f"{arch} W4A4", cfg))
    return points


def fingerprint(identity: dict[str, Any]) -> str:
    """A short stable hash of a study's identity (space, budget, board, target, data)."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]

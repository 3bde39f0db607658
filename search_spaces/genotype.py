"""The genotype: one candidate early-exit network, as plain data.

A genotype is hashable (frozen dataclass of tuples) and JSON-serialisable, so it can key caches,
travel through Optuna user attributes and be written next to exported weights.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

FLOAT_BITS = 32
"""Bit-width that means "not quantised" (full-precision float)."""


class HeadKey(NamedTuple):
    """An exit head of a supernet: the block it mounts after and its branch depth (FC layers). Its
    :attr:`name` (``"<mount>_<depth>"``) keys the supernet's ``heads`` module dict."""

    mount: int
    depth: int

    @property
    def name(self) -> str:
        return f"{self.mount}_{self.depth}"

    @classmethod
    def parse(cls, name: str) -> HeadKey:
        mount, depth = name.split("_")
        return cls(int(mount), int(depth))


class GenotypeError(ValueError):
    """A genotype that is malformed or does not fit its search space."""


@dataclass(frozen=True)
class Genotype:
    """One candidate network of a search space.

    Attributes:
        exits: backbone block indices after which an early exit is mounted, ascending. The
            final exit (after the last block) is always present and is not listed here.
        branch_depths: FC layers of each exit branch (1 or 2), one per early exit, then the final.
        weight_bits: weight bit-width of every backbone layer, in the space's layer order
            (32 = float).
        act_bits: input-activation bit-width of every backbone layer (32 = float).
        exit_weight_bits: weight bit-width of each exit branch (early exits, then the final).
        exit_act_bits: input-activation bit-width of each exit branch.
        threshold: exit confidence threshold epsilon: a sample leaves at the first exit whose top
            softmax probability is >= threshold (dimensionless, in (0, 1]).
        backbone: the space's per-block choices (e.g. kernel, expansion, skip for each block),
            flattened; empty means the space's reference backbone.
    """

    exits: tuple[int, ...]
    branch_depths: tuple[int, ...]
    weight_bits: tuple[int, ...]
    act_bits: tuple[int, ...]
    exit_weight_bits: tuple[int, ...]
    exit_act_bits: tuple[int, ...]
    threshold: float
    backbone: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "threshold":
                if not isinstance(value, (int, float)) or not 0.0 < float(value) <= 1.0:
                    raise GenotypeError(f"threshold: expected a number in (0, 1], got {value!r}")
                object.__setattr__(self, "threshold", round(float(value), 6))
                continue
            if not isinstance(value, tuple) or not all(isinstance(v, int) for v in value):
                raise GenotypeError(f"{f.name}: expected a tuple of integers, got {value!r}")
        if list(self.exits) != sorted(set(self.exits)):
            raise GenotypeError(f"exits: expected ascending distinct block indices, got {self.exits}")
        n_exits = len(self.exits) + 1
        for name in ("branch_depths", "exit_weight_bits", "exit_act_bits"):
            if len(getattr(self, name)) != n_exits:
                raise GenotypeError(
                    f"{name}: expected {n_exits} values (one per early exit plus the final), "
                    f"got {len(getattr(self, name))}"
                )
        if len(self.weight_bits) != len(self.act_bits):
            raise GenotypeError(
                f"weight_bits and act_bits: expected equal lengths, got "
                f"{len(self.weight_bits)} and {len(self.act_bits)}"
            )

    @property
    def num_exits(self) -> int:
        """Number of exits including the final one."""
        return len(self.exits) + 1

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (lists instead of tuples)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def to_json(self) -> str:
        """Compact JSON string (stable key order)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Genotype:
        """Inverse of :meth:`to_dict`; raises :class:`GenotypeError` naming the bad key."""
        if not isinstance(data, dict):
            raise GenotypeError(f"expected a mapping, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        optional = {"backbone"}
        unknown = sorted(set(data) - names)
        missing = sorted(names - set(data) - optional)
        if unknown:
            raise GenotypeError(f"unknown key(s) {unknown}; expected {sorted(names)}")
        if missing:
            raise GenotypeError(f"missing key(s) {missing}")
        kwargs: dict[str, Any] = {}
        for name in names & set(data):
            value = data[name]
            if name == "threshold":
                kwargs[name] = value
            elif isinstance(value, (list, tuple)):
                kwargs[name] = tuple(value)
            else:
                raise GenotypeError(f"{name}: expected a list of integers, got {value!r}")
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

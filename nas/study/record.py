"""The trial record: one evaluated candidate as its Optuna trial stores it, typed.

The objective writes a candidate's JSON-ready attributes (:meth:`nas.study.evaluator.Evaluation.attributes`)
as the trial's user attributes; everything downstream (report, export, hypervolume, pre-screening,
benchmarks) reads them back through :meth:`TrialRecord.of` instead of by string key. Feasibility is
defined here once: every recorded exit-overhead constraint value is <= 0 (Optuna's convention).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from search_spaces.genotype import Genotype


def satisfied(constraints: Mapping[str, float] | Iterable[float]) -> bool:
    """True when every constraint value is <= 0 (no constraints: True). The one feasibility rule."""
    values = constraints.values() if isinstance(constraints, Mapping) else constraints
    return all(float(v) <= 0 for v in values)


@dataclass(frozen=True)
class TrialRecord:
    """An evaluated candidate of a complete trial. Energies in J, latencies in cycles, EDP in J x
    cycles, accuracy and ratios as fractions (validation split)."""

    number: int
    genotype: Genotype
    exit_labels: tuple[str, ...]
    threshold: float
    accuracy: float
    exit_ratios: tuple[float, ...]
    expected_edp_j_cycles: float
    expected_energy_j: float
    expected_latency_cycles: float
    static_edp_j_cycles: float
    reduction_factor: float
    constraints: Mapping[str, float]
    bits: Mapping[str, str]
    baseline: str | None = None  # the named baseline this trial evaluated (e.g. "static"), if any
    attributes: Mapping[str, Any] = field(default_factory=dict, repr=False)  # everything stored

    @property
    def feasible(self) -> bool:
        """Every exit-overhead constraint satisfied."""
        return satisfied(self.constraints)

    @property
    def exits(self) -> str:
        """The exit labels in one string, e.g. ``"DFIK"``."""
        return "".join(self.exit_labels)

    def metric(self, name: str) -> float:
        """The value of a metric by its stored name (an objective's ``metric``, e.g. ``expected_energy_j``)."""
        try:
            return float(self.attributes[name])
        except KeyError:
            raise KeyError(f"trial {self.number} records no metric {name!r}") from None

    @classmethod
    def from_attributes(cls, number: int, attrs: Mapping[str, Any]) -> TrialRecord:
        """The record of stored attributes (KeyError naming the key when one is missing)."""
        try:
            return cls(number=number, genotype=Genotype.from_dict(attrs["genotype"]),
                       exit_labels=tuple(attrs["exit_labels"]), threshold=float(attrs["threshold"]),
                       accuracy=float(attrs["accuracy"]), exit_ratios=tuple(float(r) for r in attrs["exit_ratios"]),
                       expected_edp_j_cycles=float(attrs["expected_edp_j_cycles"]),
                       expected_energy_j=float(attrs["expected_energy_j"]),
                       expected_latency_cycles=float(attrs["expected_latency_cycles"]),
                       static_edp_j_cycles=float(attrs["static_edp_j_cycles"]),
                       reduction_factor=float(attrs["reduction_factor"]),
                       constraints={k: float(v) for k, v in attrs["constraints"].items()},
                       bits=dict(attrs["bits"]), baseline=attrs.get("baseline"), attributes=dict(attrs))
        except KeyError as exc:
            raise KeyError(f"trial {number}: its record lacks {exc.args[0]!r}") from None

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialRecord | None:
        """The record of a complete trial that evaluated a candidate; None for any other trial
        (running, pruned, failed, or complete without a candidate)."""
        if trial.state != TrialState.COMPLETE or "accuracy" not in trial.user_attrs:
            return None
        return cls.from_attributes(trial.number, trial.user_attrs)


def records(trials: Sequence[FrozenTrial]) -> list[TrialRecord]:
    """The records of the trials that evaluated a candidate, in the trials' order."""
    return [r for r in map(TrialRecord.of, trials) if r is not None]


def is_feasible(trial: FrozenTrial) -> bool:
    """A complete trial with an evaluated candidate whose constraints are all satisfied."""
    record = TrialRecord.of(trial)
    return record is not None and record.feasible

"""Confirming a study's Pareto front on more batch-norm images.

A trial's accuracy is measured once, after re-estimating its candidate's batch-norm statistics on the first
``search.bn_recalibration_samples`` training images. Which images those are moves a candidate's accuracy by a
few tenths of a point, by points for a few candidates (``benchmarks/bn_samples.py``), and a front picked on
such values favours the candidates whose images happened to suit them. Confirmation re-scores each front
trial at its own threshold on the same validation images, its statistics re-estimated on ``slices`` disjoint
slices of the training split that the search did not use, and reports the mean and the spread over slices.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from optuna.trial import FrozenTrial

from nas.study.evaluator import CandidateEvaluator
from nas.study.record import TrialRecord

STUDY_ATTR = "confirmed_front"  # the study's user attribute holding the last confirmation (a list of dicts)


@dataclass(frozen=True)
class Confirmation:
    """One front trial re-scored on several batch-norm slices. Accuracies as fractions (validation images),
    expected EDP in J x cycles; ``first_image`` and ``images``: where the slices start in the training split
    and how many images each holds."""

    trial: int
    searched_accuracy: float
    searched_expected_edp: float
    accuracies: tuple[float, ...]
    expected_edps: tuple[float, ...]
    first_image: int
    images: int

    @property
    def accuracy(self) -> float:
        """Mean accuracy over the slices."""
        return statistics.fmean(self.accuracies)

    @property
    def accuracy_std(self) -> float:
        """Standard deviation of the accuracy over the slices (0 for one slice)."""
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0

    @property
    def expected_edp(self) -> float:
        """Mean expected EDP over the slices (J x cycles; the exit ratios move with the statistics)."""
        return statistics.fmean(self.expected_edps)

    @property
    def optimism(self) -> float:
        """How much higher the search scored the trial than the slices do (fraction; negative: lower)."""
        return self.searched_accuracy - self.accuracy

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the means: what the study's user attribute and ``confirmed_front.json`` hold."""
        return {**asdict(self), "accuracy": self.accuracy, "accuracy_std": self.accuracy_std,
                "expected_edp": self.expected_edp}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Confirmation:
        return cls(int(d["trial"]), float(d["searched_accuracy"]), float(d["searched_expected_edp"]),
                   tuple(map(float, d["accuracies"])), tuple(map(float, d["expected_edps"])),
                   int(d["first_image"]), int(d["images"]))


def slice_bounds(n_train: int, skip: int, images: int, slices: int) -> list[tuple[int, int]]:
    """``slices`` disjoint (start, stop) ranges of ``images`` training images each, after the first ``skip``
    (the ones the search re-estimated on). ValueError when the training split is too small."""
    if images < 1 or slices < 1:
        raise ValueError(f"expected at least one slice of at least one image, got {slices} slices of {images}")
    need = skip + images * slices
    if need > n_train:
        raise ValueError(f"{slices} slices of {images} images after the search's first {skip}: expected a training "
                         f"split of at least {need} images, got {n_train} (fewer slices or images)")
    return [(skip + i * images, skip + (i + 1) * images) for i in range(slices)]


def confirm_trials(trials: Sequence[FrozenTrial], evaluator_for: Callable[[torch.Tensor], CandidateEvaluator],
                   train_images: torch.Tensor, *, skip: int, images: int, slices: int,
                   progress: Callable[[int, int], None] | None = None) -> list[Confirmation]:
    """Re-score each trial's candidate (at its recorded threshold) with an evaluator whose batch norm is
    re-estimated on each slice (:func:`slice_bounds`); ``evaluator_for(images)`` builds one per slice, so
    trials on one backbone share its inference. ``progress(done, total)`` after each evaluation."""
    bounds = slice_bounds(len(train_images), skip, images, slices)
    records = []
    for t in trials:
        record = TrialRecord.of(t)
        if record is None:
            raise ValueError(f"trial {t.number} holds no evaluated candidate to confirm")
        records.append(record)
    accuracies: list[list[float]] = [[] for _ in records]
    edps: list[list[float]] = [[] for _ in records]
    for s, (start, stop) in enumerate(bounds):
        evaluator = evaluator_for(train_images[start:stop])
        for i, record in enumerate(records):
            evaluation = evaluator(record.genotype)
            accuracies[i].append(evaluation.stats.accuracy)
            edps[i].append(evaluation.expected.expected_edp)
            if progress is not None:
                progress(s * len(records) + i + 1, len(bounds) * len(records))
    return [Confirmation(r.number, r.accuracy, r.expected_edp_j_cycles, tuple(a), tuple(e), bounds[0][0], images)
            for r, a, e in zip(records, accuracies, edps)]


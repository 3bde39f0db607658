"""Hypervolume of a study's trials in (accuracy, expected EDP) space, and its growth with trials.

The dominated area between the feasible trials and a reference point (accuracy ``acc_ref``, EDP
``edp_ref``), with both axes normalised: accuracy as is (a fraction), EDP divided by ``edp_ref``.
So 1.0 would be a network of accuracy 1 at zero EDP, and a trial at or beyond the reference adds
nothing. Comparing studies needs the same reference point (e.g. the static network's EDP).
"""

from __future__ import annotations

from collections.abc import Sequence

from optuna.trial import FrozenTrial

from nas.study.record import TrialRecord


def hypervolume_2d(points: Sequence[tuple[float, float]], acc_ref: float, edp_ref: float) -> float:
    """Area dominated by ``(accuracy, edp)`` points (maximise accuracy, minimise EDP) over the
    reference point, EDP normalised by ``edp_ref``."""
    pts = sorted((e / edp_ref, a) for a, e in points if a > acc_ref and e < edp_ref)
    area, best_acc = 0.0, acc_ref
    for i, (e, a) in enumerate(pts):  # sweep EDP upwards: each step adds a strip of the best accuracy so far
        best_acc = max(best_acc, a)
        right = pts[i + 1][0] if i + 1 < len(pts) else 1.0
        area += (right - e) * (best_acc - acc_ref)
    return area


def _point(t: FrozenTrial) -> tuple[float, float] | None:
    record = TrialRecord.of(t)
    if record is None or not record.feasible:
        return None
    return record.accuracy, record.expected_edp_j_cycles


def hypervolume_curve(trials: Sequence[FrozenTrial], acc_ref: float, edp_ref: float) -> list[float]:
    """Hypervolume of the feasible complete trials among the first k trials, for k = 1..len(trials)
    (trials in number order; pruned and failed trials add nothing but count)."""
    points, curve = [], []
    for t in sorted(trials, key=lambda t: t.number):
        p = _point(t)
        if p is not None:
            points.append(p)
        curve.append(hypervolume_2d(points, acc_ref, edp_ref))
    return curve


def trials_to_reach(curve: Sequence[float], target: float) -> int | None:
    """The number of trials after which ``curve`` first reaches ``target`` (None: never)."""
    return next((i + 1 for i, v in enumerate(curve) if v >= target - 1e-12), None)

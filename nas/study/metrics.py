"""The metrics a study can optimise: each objective's name, direction and the record field it reads.

Plain data (no torch, no Optuna), so a configuration can be checked against it without loading the search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Objective:
    """A study objective: its direction and the candidate attribute it reads."""

    direction: Literal["maximize", "minimize"]
    metric: str  # the trial record's field (and user attribute) holding the value


OBJECTIVES = {
    "accuracy": Objective("maximize", "accuracy"),
    "expected_edp": Objective("minimize", "expected_edp_j_cycles"),
    "expected_energy": Objective("minimize", "expected_energy_j"),
    "expected_latency": Objective("minimize", "expected_latency_s"),
    "expected_macs": Objective("minimize", "expected_macs"),
}
METRIC_NAMES = ("accuracy", "expected_edp_j_cycles")  # the default objectives'

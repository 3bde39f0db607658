"""Scoring a candidate: accuracy with shared weights, expected EDP on the accelerator, constraints.

Exit-overhead constraints (Optuna convention: a value <= 0 is satisfied):

- ``final_exit_ratio``: r_final - final_exit_ratio_max. The share of samples that run the whole
  network stays within the limit (default 0.5), so the exits do real work.
- ``exit_overhead``: E_cum(N) L_cum(N) / (E_static L_static) - 1 - exit_overhead_max. A sample that
  runs every exit classifier costs at most (1 + limit) times the static network (default 0.5).
- ``normalized_edp`` (optional): expected EDP / static EDP - normalized_edp_max.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx
import torch

from hwmodel import CostModel, ExpectedCost, NetworkCost, expected_cost
from hwmodel.accounting import expectation
from hwmodel.scheduling import ScheduleSettings
from nas.config import ConstraintConfig, RunConfig
from nas.data import Split
from nas.study.memory import keep_freed_memory
from nas.study.record import satisfied
from nas.supernet.calibrate import ExitOutputs, ExitStats, exit_stats, recalibrate_batchnorm, rule_threshold
from search_spaces import EarlyExitNet, ExitHead, Genotype, SearchSpace, Supernet, stage_macs
from search_spaces.genotype import HeadKey
from search_spaces.modules.folded import fold_backbone, nhwc, recalibrate_folded


def constraint_values(stats: ExitStats, expected: ExpectedCost, limits: ConstraintConfig) -> dict[str, float]:
    """Named constraint values (<= 0 means satisfied) for the enabled limits."""
    values: dict[str, float] = {}
    if limits.final_exit_ratio_max is not None:
        values["final_exit_ratio"] = stats.ratios[-1] - limits.final_exit_ratio_max
    if limits.exit_overhead_max is not None:
        values["exit_overhead"] = expected.exit_overhead - limits.exit_overhead_max
    if limits.normalized_edp_max is not None:
        values["normalized_edp"] = expected.normalized_expected_edp - limits.normalized_edp_max
    return values


def expected_macs(ratios: Sequence[float], stage_macs: Sequence[int]) -> float:
    """sum_i r_i * cumulative MACs up to exit i (MACs per stage in exit order)."""
    return expectation(ratios, list(itertools.accumulate(stage_macs)))


@dataclass(frozen=True)
class Evaluation:
    """Everything measured about one candidate."""

    genotype: Genotype
    exit_labels: list[str]
    stats: ExitStats
    network: NetworkCost
    static: NetworkCost
    expected: ExpectedCost
    constraints: dict[str, float]
    stage_macs: list[int]

    @property
    def feasible(self) -> bool:
        """Every exit-overhead constraint satisfied (:func:`nas.study.record.satisfied`)."""
        return satisfied(self.constraints)

    @property
    def macs(self) -> int:
        """MACs of the path through every exit."""
        return sum(self.stage_macs)

    @property
    def expected_macs(self) -> float:
        """sum_i r_i * cumulative MACs up to exit i."""
        return expected_macs(self.stats.ratios, self.stage_macs)

    def attributes(self, space: SearchSpace) -> dict[str, Any]:
        """JSON-ready record of the candidate (Optuna user attributes, export metrics)."""
        g = self.genotype
        names = space.backbone_layer_names()
        clock = self.network.clock_hz
        return {
            "genotype": g.to_dict(),
            "exit_labels": self.exit_labels,
            "threshold": g.threshold,
            "bits": {n: f"W{w}A{a}" for n, w, a in zip(names, g.weight_bits, g.act_bits)}
            | {f"exit_{lbl}": f"W{w}A{a}" for lbl, w, a in zip(self.exit_labels, g.exit_weight_bits, g.exit_act_bits)},
            "accuracy": self.stats.accuracy,
            "exit_ratios": list(self.stats.ratios),
            "exit_accuracy": list(self.stats.exit_accuracy),
            "exit_accuracy_all_samples": list(self.stats.exit_accuracy_all),
            "macs": self.macs,
            "expected_macs": self.expected_macs,
            "expected_edp_j_cycles": self.expected.expected_edp,
            "expected_energy_j": self.expected.expected_energy_j,
            "expected_latency_cycles": self.expected.expected_latency_cycles,
            "expected_latency_s": self.expected.expected_latency_cycles / clock,
            "expected_energy_x_latency_j_cycles": self.expected.expected_energy_x_latency,
            "stage_energy_j": [e * 1e-12 for e in self.network.stage_energy_pj],
            "stage_latency_cycles": self.network.stage_latency_cycles,
            "et_j_cycles": self.network.et,
            "cumulative_energy_j": self.network.cumulative_energy_j,
            "cumulative_latency_cycles": self.network.cumulative_latency_cycles,
            "clock_hz": clock,
            "static_edp_j_cycles": self.expected.static_edp,
            "static_energy_j": self.expected.static_energy_j,
            "static_latency_cycles": self.expected.static_latency_cycles,
            "full_path_edp_j_cycles": self.expected.full_path_edp,
            "reduction_factor": self.expected.reduction_factor,
            "normalized_expected_edp": self.expected.normalized_expected_edp,
            "exit_overhead": self.expected.exit_overhead,
            "branch_energy_share": self.network.branch_energy_share,
            "constraints": self.constraints,
            "feasible": self.feasible,
            "cost_model_mode": self.network.mode,
            "tile_rows": self.network.schedule.tile_rows if self.network.schedule else None,
            "accelerator": self.network.system,
        }


@contextlib.contextmanager
def timed(seconds: dict[str, float] | None, phase: str) -> Iterator[None]:
    """Add the block's wall time (s) to ``seconds[phase]`` (nothing when ``seconds`` is None)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        if seconds is not None:
            seconds[phase] = seconds.get(phase, 0.0) + time.perf_counter() - start


def candidate_network(supernet: Supernet, genotype: Genotype, calibration: torch.Tensor | None,
                      seconds: dict[str, float] | None = None) -> EarlyExitNet:
    """The genotype's standalone network as scored and exported: extracted from the supernet, with
    batch-norm statistics re-estimated on ``calibration`` images (deterministic). ``seconds``
    collects the time of each step ("extract", "batchnorm")."""
    with torch.no_grad():
        with timed(seconds, "extract"):
            net = supernet.eval().extract(genotype)
        if calibration is not None and len(calibration):
            with timed(seconds, "batchnorm"):
                recalibrate_batchnorm(net, calibration)
    return net.eval()


@dataclass
class _BackboneOutputs:
    """What the evaluator keeps of one backbone: its heads' logits on the split, by (mount, depth,
    weight bits, activation bits), and, while recent, the pooled features any head reads (per
    (block, pool kernel), one tensor per inference batch) with the index of its last block."""

    logits: dict[tuple, torch.Tensor] = field(default_factory=dict)
    pooled: dict[tuple[int, int], list[torch.Tensor]] | None = None
    last: int = -1


class CandidateEvaluator:
    """Scores genotypes with the trained supernet on a held-out split and the cost model.

    ``calibration``: training images for batch-norm recalibration of each candidate (None: off).
    ``threshold``: ``searched`` (the genotype's) or ``rule`` (the lowest threshold of the space's grid
    within ``max_accuracy_loss`` of the final exit's accuracy). ``folded``: run each candidate's backbone
    folded for inference (:mod:`search_spaces.modules.folded`: batch norm and steps in the weights, NHWC
    memory order, batch norm re-estimated on the folded layers), about 2x faster on a CPU and equal to the extracted
    network to float precision (a quantisation level at a rounding boundary may flip); False: the
    extracted network as exported, in NCHW, bit for bit. ``int8``: folded layers of at most 8 bits
    convolve integers where oneDNN can (:func:`search_spaces.modules.folded.int8_available`).
    Speed and fidelity: ``benchmarks/candidate_eval.py``.
    """

    def __init__(self, space: SearchSpace, supernet: Supernet, split: Split, cost_model: CostModel,
                 limits: ConstraintConfig, *, batch_size: int = 100, operating_point: str | None = None,
                 schedule: ScheduleSettings | None = None, calibration: torch.Tensor | None = None,
                 threshold: str = "searched", max_accuracy_loss: float = 0.01, folded: bool = True,
                 int8: bool = True) -> None:
        self.space, self.supernet, self.split = space, supernet.eval(), split
        self.cost_model, self.limits, self.batch_size = cost_model, limits, batch_size
        self.operating_point = operating_point
        self.schedule = schedule or ScheduleSettings()  # the config's default: fused
        self.calibration = calibration
        self.threshold, self.max_accuracy_loss = threshold, max_accuracy_loss
        self._heads: dict[tuple, _BackboneOutputs] = {}  # backbone -> its heads' logits and features (LRU)
        self.cached_backbones = 32  # backbones whose heads' logits are kept
        self.cached_features = 4  # of those, the most recent ones whose pooled features are kept too
        self.seconds: dict[str, float] = {}  # the last call's wall time per phase (s)
        self.folded, self.int8 = folded, int8
        keep_freed_memory()  # layer outputs reuse freed memory instead of faulting in fresh pages (nas.study.memory)

    @classmethod
    def from_config(cls, cfg: RunConfig, space: SearchSpace, supernet: Supernet, split: Split, cost_model: CostModel,
                    calibration: torch.Tensor | None, **overrides: Any) -> CandidateEvaluator:
        """The evaluator a run's configuration asks for (constraints, batch size, operating point,
        schedule, threshold rule); ``overrides``: keyword arguments that replace configured ones."""
        settings = {"batch_size": cfg.search.eval_batch_size, "folded": cfg.search.folded_inference,
                    "int8": cfg.search.int8_inference,
                    "operating_point": cfg.cost.operating_point,
                    "schedule": cfg.cost.schedule, "calibration": calibration, "threshold": cfg.search.threshold,
                    "max_accuracy_loss": cfg.search.max_accuracy_loss}
        return cls(space, supernet, split, cost_model, cfg.constraints, **(settings | overrides))

    def with_schedule(self, schedule: ScheduleSettings) -> CandidateEvaluator:
        """This evaluator under another schedule, sharing its cache of exit logits (they do not depend
        on the schedule)."""
        other = copy.copy(self)
        other.schedule = schedule
        return other

    def cost(self, graph: nx.DiGraph) -> NetworkCost:
        """The network's cost under the configured schedule and operating point."""
        return self.cost_model.evaluate(graph, self.schedule, self.operating_point)

    @torch.no_grad()
    def outputs(self, genotype: Genotype) -> ExitOutputs:
        """Every exit's logits on the split.

        An exit head's logits depend only on the backbone (its choices and bits, which also fix the
        re-estimated batch-norm statistics) and on the head itself (mount point, depth, bits). So the
        first candidate on a backbone runs the backbone once and keeps, at every block a head can
        mount on, the pooled features the heads read (small: pooled to 4 x 4); each head a candidate
        asks for then costs a few small FC layers on those features, and its logits are cached per
        backbone: a later candidate on that backbone (a fixed-backbone study: all of them) costs no
        backbone inference at all.
        """
        key = (genotype.backbone, genotype.weight_bits, genotype.act_bits)
        heads = list(zip((*genotype.exits, -1), genotype.branch_depths, genotype.exit_weight_bits,
                         genotype.exit_act_bits))
        entry = self._heads.pop(key, None) or _BackboneOutputs()
        self._heads[key] = entry  # most recently used last
        missing = [h for h in heads if h not in entry.logits]
        if missing:
            if entry.pooled is None:
                entry.pooled, entry.last = self._pooled_features(genotype)
                while len(self._heads) > self.cached_backbones:
                    self._heads.pop(next(iter(self._heads)))
                kept = [e for e in self._heads.values() if e.pooled is not None]
                for old in kept[: max(0, len(kept) - self.cached_features)]:
                    old.pooled = None  # the logits stay; these backbones' features go first
            with timed(self.seconds, "heads"):
                entry.logits.update(self._run_heads(entry, missing))
        logits = [entry.logits[h] for h in heads]
        return ExitOutputs(torch.stack([lg.argmax(1) for lg in logits]), logits, self.split.labels)

    def _pooled_features(self, genotype: Genotype) -> tuple[dict[tuple[int, int], list[torch.Tensor]], int]:
        """One inference of ``genotype``'s backbone (batch-norm statistics re-estimated): the pooled,
        flattened features per (block, pool kernel) a supernet head reads, one tensor per batch, and the
        index of the last block."""
        if self.folded:  # batch norm re-estimated on the folded layers (the same statistics, fewer passes)
            net = candidate_network(self.supernet, genotype, None, self.seconds)
            with timed(self.seconds, "extract"):
                stem, blocks = fold_backbone(net.stem, net.blocks, keep=False,  # the network is not used again
                                             int8=None if self.int8 else False)
            if self.calibration is not None and len(self.calibration):
                with timed(self.seconds, "batchnorm"):
                    recalibrate_folded(stem, blocks, self.calibration)
        else:
            net = candidate_network(self.supernet, genotype, self.calibration, self.seconds)
            stem, blocks = net.stem, net.blocks
        pools: dict[int, dict[int, ExitHead]] = {}  # block -> pool kernel -> a head that pools so
        for key in self.supernet.heads:
            mount, depth = HeadKey.parse(key)
            head = self.supernet.head(mount, depth)
            pools.setdefault(mount, {}).setdefault(head.pool_kernel, head)
        pooled: dict[tuple[int, int], list[torch.Tensor]] = {(b, k): [] for b, ks in pools.items() for k in ks}
        with timed(self.seconds, "backbone"):
            for x, _y in self.split.batches(self.batch_size):
                h = stem(nhwc(x) if self.folded else x)
                for i, block in enumerate(blocks):
                    h = block(h)
                    for k, head in pools.get(i, {}).items():
                        pooled[(i, k)].append(head.pool(h))
        return pooled, len(blocks) - 1

    def _run_heads(self, entry: _BackboneOutputs, wanted: list[tuple]) -> dict[tuple, torch.Tensor]:
        """Logits of the head variants ``wanted`` (mount, depth, weight bits, activation bits; mount -1:
        the final block) on the backbone's pooled features, batch by batch as the backbone ran."""
        assert entry.pooled is not None
        out = {}
        for v in wanted:
            mount = entry.last if v[0] == -1 else v[0]
            head = self.supernet.head(mount, v[1])
            head.set_bits(v[2], v[3])
            out[v] = torch.cat([head.fc(p) for p in entry.pooled[(mount, head.pool_kernel)]])
        return out

    def settle_threshold(self, genotype: Genotype) -> Genotype:
        """The genotype with its threshold chosen by the configured rule (unchanged when searched)."""
        if self.threshold != "rule":
            return genotype
        grid = self.space.options.thresholds
        return replace(genotype, threshold=rule_threshold(self.outputs(genotype), grid, self.max_accuracy_loss))

    def stats(self, genotype: Genotype) -> ExitStats:
        """Exit statistics of ``genotype`` at its threshold."""
        return exit_stats(self.outputs(genotype), genotype.threshold)

    def __call__(self, genotype: Genotype) -> Evaluation:
        """Costs first (cheap when cached, and an unmappable layer fails fast), then accuracy."""
        self.seconds = {}
        self.space.validate(genotype)
        with timed(self.seconds, "cost"):
            graph = self.space.layer_graph(genotype)
            network = self.cost(graph)
            static = self.cost(self.space.layer_graph(self.space.static_genotype(genotype)))
        genotype = self.settle_threshold(genotype)
        stats = self.stats(genotype)
        expected = expected_cost(network, static, stats.ratios)
        return Evaluation(genotype, self.space.exit_labels(genotype), stats, network, static, expected,
                          constraint_values(stats, expected, self.limits), stage_macs(graph))

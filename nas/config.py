"""Run configuration: dataclasses with defaults, loadable from YAML with errors naming file and key."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from hwmodel.scheduling import ScheduleSettings
from hwmodel.schema import INTERNAL, SchemaError, from_mapping, load_yaml, package_folder, to_mapping, user_keys
from hwmodel.zigzag_core import ZigZagSettings
from nas.study.metrics import OBJECTIVES
from search_spaces import space_class

CONFIGS_DIR = package_folder("configs")  # the shipped configs: the installed ``configs`` data package


@dataclass
class DataConfig:
    """Dataset: ``synthetic`` (built in), ``fashion_mnist`` / ``mnist`` (idx files in ``root``),
    ``cifar10`` (the python batches folder ``root``) or ``npz`` (``root`` = an .npz file)."""

    name: Literal["synthetic", "fashion_mnist", "mnist", "cifar10", "npz"] = "synthetic"
    root: str | None = None
    n_train: int = 8000  # synthetic only
    n_val: int = 2000  # synthetic: generated; files: held out from the training files
    n_test: int = 2000  # synthetic only
    limit_train: int | None = None  # files: use only the first N training images
    limit_test: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("n_train", "n_val", "n_test", "limit_train", "limit_test"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ValueError(f"{key}: expected a positive number of images{' or null' if 'limit' in key else ''}, "
                                 f"got {value}")


@dataclass
class SpaceConfig:
    """Search space by registered name, with that space's options (validated against its Options)."""

    name: str = "mobilenetv2_cifar"
    options: dict[str, Any] = field(default_factory=dict)


# subnet kinds of TrainConfig.companions
COMPANIONS = ("smallest", "smallest_high_bits", "largest", "largest_low_bits", "reference", "reference_low_bits",
              "reference_high_bits", "random")


@dataclass
class TrainConfig:
    """Supernet QAT training. ``lr`` is the peak of a cosine schedule with ``warmup_epochs``."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 4e-5
    warmup_epochs: float = 0.3
    label_smoothing: float = 0.0
    augment: bool = True
    seed: int = 0
    threads: int | None = None  # torch threads; None = all cores
    optimizer: Literal["sgd", "adamw"] = "sgd"
    sandwich: bool = True  # largest + smallest + random subnets per step
    random_subnets: int = 2  # random subnets per step (with or without the sandwich)
    distill: bool = True  # in-place distillation from the largest subnet (needs the sandwich)
    # with distillation, the share of a student's loss taken from the labels (cross-entropy); the rest
    # is the KL divergence to the teacher's predictions (0: the teacher alone, as before)
    distill_label_weight: float = 0.0
    exit_weights: dict[str, float] = field(default_factory=dict)  # loss weight per exit label (default 1)
    # progressive recipe (nas.supernet.training): the teacher alone in float for the first epochs ...
    fp32_epochs: int = 0
    # ... then, when set, the teacher at its highest bits plus ONE companion per step, cycling through
    # these kinds: "smallest" (at its lowest bits), "smallest_high_bits" (at its highest), "largest" (at
    # its highest bits), "largest_low_bits" (the largest at the lowest bits), "reference" (the space's
    # reference backbone at its lowest or highest bits), "reference_low_bits" (at its lowest bits),
    # "reference_high_bits" (at its highest bits), "random".
    # Empty: the sandwich / random_subnets rule above from the first quantised epoch.
    companions: tuple[str, ...] = ()
    # the subnet of the progressive recipe that learns from the labels and teaches the companions: the
    # space's "largest" (Once-for-All's choice) or its "reference" backbone (at its highest bits)
    teacher: Literal["largest", "reference"] = "largest"
    # "all": the supernet; or one fixed subnet trained alone (the weight-sharing baseline), float in the
    # fp32 epochs and at the highest bits after them: "largest", "smallest" or "reference" (the space's)
    subnet: Literal["all", "largest", "smallest", "reference"] = "all"
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when present (bfloat16 autocast in float epochs)
    # a supernet checkpoint whose weights start this training (a later stage of a recipe: fresh
    # optimiser and schedule); ignored once this run has its own checkpoint
    init_from: str | None = None
    # with init_from: re-fit the input image's quantiser steps (max|x| / Qp, nas.supernet.training) on the
    # first batch instead of keeping init_from's; for a checkpoint whose steps came from LSQ's rule
    refit_input_steps: bool = False
    # activation quantisers with kernels fused by torch.compile (needs a C++ compiler; about 2 minutes
    # of compiling on first use, cached by torch; falls back to the eager kernels with a warning)
    compile_quantisers: bool = False
    # a zoo supernet (`nas zoo`) used as this run's trained supernet: nothing is trained, its weights
    # are checked (hash, space) and placed at <run_dir>/supernet.pt
    zoo: str | None = None

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1:
            raise ValueError("epochs: expected >= 0 and batch_size >= 1")
        if self.lr <= 0:
            raise ValueError(f"lr: expected a positive number, got {self.lr}")
        if self.random_subnets < 0 or (not self.sandwich and self.random_subnets < 1):
            raise ValueError("random_subnets: expected >= 0, and >= 1 without the sandwich rule")
        if not 0 <= self.fp32_epochs <= self.epochs:
            raise ValueError(f"fp32_epochs: expected 0..epochs ({self.epochs}), got {self.fp32_epochs}")
        bad_kinds = [k for k in self.companions if k not in COMPANIONS]
        if bad_kinds:
            raise ValueError(f"companions: expected kinds from {list(COMPANIONS)}, got {bad_kinds}")
        if not 0.0 <= self.distill_label_weight <= 1.0:
            raise ValueError(f"distill_label_weight: expected a share in [0, 1], got {self.distill_label_weight}")
        bad = {k: v for k, v in self.exit_weights.items() if v < 0}
        if bad:
            raise ValueError(f"exit_weights: expected non-negative weights, got {bad}")


@dataclass
class CostConfig:
    """Hardware cost model: the accelerator (shipped name or path), how candidates are scheduled on it
    (``schedule``: :class:`hwmodel.scheduling.ScheduleSettings`, e.g. ``mode: fused`` with row tiles
    and concurrent cores, or ``layer_by_layer`` as in the reference) and ZigZag's per-layer mapper
    search (``zigzag``: :class:`hwmodel.zigzag_core.ZigZagSettings`). Each nested section is the
    cost model's own settings class, declared and validated there."""

    accelerator: str = "edge_tpu_quad"
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    zigzag: ZigZagSettings = field(default_factory=ZigZagSettings)
    cache: str | None = "default"  # "default" (user cache folder), a path, or null (memory only)
    workers: int = 2  # processes that cost cache misses, this one included (n - 1 are spawned)
    operating_point: str | None = None  # DVFS point of the accelerator (null: its default)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers: expected a positive number of processes, got {self.workers}")


# keys of the flat ``cost`` section of earlier versions -> the nested section that holds them now
MOVED_COST_KEYS = {**dict.fromkeys(("mode", "tile_rows", "allocation", "order"), "schedule"),
                   **dict.fromkeys(("lpf_limit", "optimize", "spatial_mappings"), "zigzag")}


@dataclass
class ConstraintConfig:
    """Exit-overhead constraints (null disables one). See ``nas.study.evaluator`` for the formulas."""

    final_exit_ratio_max: float | None = 0.5
    exit_overhead_max: float | None = 0.5
    normalized_edp_max: float | None = None


@dataclass
class SearchConfig:
    """The Optuna study."""

    n_trials: int = 100
    objectives: tuple[str, ...] = ("accuracy", "expected_edp")  # see nas.study.study.OBJECTIVES
    sampler: Literal["nsga2", "nsga3", "tpe", "random"] = "nsga2"
    enqueue: tuple[str, ...] = ("static",)  # baselines tried first on a new study (the space's baselines())
    fixed: dict[str, Any] = field(default_factory=dict)  # pinned parameters: backbone: reference, bits: 8, or names
    trial_plots: bool = True  # attach each candidate's ribbon plot to its trial (run_dir/artifacts)
    prescreen: bool = False  # skip candidates a surrogate refit on the trials so far predicts dominated
    prescreen_min_trials: int = 10  # complete trials before the surrogate screens anything
    prescreen_margin: float = 1.0  # optimism, in leave-one-out standard errors per objective
    screening: bool = False  # multi-fidelity: NSGA-II screens predicted candidates, the promising ones are evaluated
    screening_candidates: int = 1000  # predicted candidates per screening round (milliseconds each)
    screening_picks: int = 8  # candidates of a round's predicted front really evaluated (4: more time screening)
    screening_min_trials: int = 10  # complete trials before the first round
    screening_rivals: Literal["evaluated", "predicted"] = "evaluated"  # the evaluated trials in a screening round:
    # at their measured values, or at their leave-one-out predictions (nas.study.screening)
    surrogate_ridge: float | Literal["loo"] = 1.0  # pre-screening's and screening's ridge strength; "loo": each
    # objective's (and constraint's) strength picked by its leave-one-out error (nas.study.predictors.RIDGE_GRID)
    heartbeat_s: int = 30  # RDB storages: a trial silent for 3 heartbeats is failed and retried once
    population_size: int = 20
    seed: int = 0
    study_name: str = "eenas"
    eval_batch_size: int = 100  # images per inference batch (100: activations stay in cache; candidate_eval.py)
    folded_inference: bool = True  # score folded networks (~2x faster, equal to float precision); false: bit-exact
    int8_inference: bool = True  # folded layers of <= 8 bits convolve integers where oneDNN can (x86 CPUs)
    val_samples: int | None = None  # validation images that score each candidate (the first N; null: all)
    bn_recalibration_samples: int = 1000  # training images that re-estimate batch-norm statistics per candidate
    threshold: Literal["searched", "rule"] = "searched"  # searched on the space's grid, or chosen by the rule
    max_accuracy_loss: float = 0.01  # the rule: lowest threshold within this of the final exit's accuracy

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise ValueError(f"n_trials: expected a positive integer, got {self.n_trials}")
        if self.heartbeat_s < 1:
            raise ValueError(f"heartbeat_s: expected a positive number of seconds, got {self.heartbeat_s}")
        if self.val_samples is not None and self.val_samples < 1:
            raise ValueError(f"val_samples: expected a positive number of images or null, got {self.val_samples}")
        if self.eval_batch_size < 1:
            raise ValueError(f"eval_batch_size: expected a positive number of images, got {self.eval_batch_size}")
        if self.bn_recalibration_samples < 0:
            raise ValueError(f"bn_recalibration_samples: expected 0 (off) or more images, "
                             f"got {self.bn_recalibration_samples}")
        if self.max_accuracy_loss < 0:
            raise ValueError(f"max_accuracy_loss: expected a non-negative fraction, got {self.max_accuracy_loss}")
        if self.surrogate_ridge != "loo" and not self.surrogate_ridge > 0:
            raise ValueError(f"surrogate_ridge: expected a positive number or 'loo', got {self.surrogate_ridge}")
        for key in ("screening_candidates", "screening_picks", "screening_min_trials"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: expected a positive integer, got {getattr(self, key)}")
        if self.population_size < 2:
            raise ValueError(f"population_size: expected >= 2, got {self.population_size}")
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        if unknown or len(self.objectives) < 1:
            raise ValueError(f"objectives: expected names from {sorted(OBJECTIVES)}, got {list(self.objectives)}")


@dataclass
class RunConfig:
    """Everything a run needs. ``run_dir`` receives the checkpoint, study, plots and exports."""

    run_dir: str = "runs/default"
    data: DataConfig = field(default_factory=DataConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    constraints: ConstraintConfig = field(default_factory=ConstraintConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    source: str = field(default="<defaults>", compare=False, repr=False, metadata=INTERNAL)

    def space_options(self, num_classes: int | None = None, in_channels: int | None = None,
                      input_size: int | None = None) -> Any:
        """The space's Options object; ``num_classes`` / ``in_channels`` / ``input_size`` (pixels) filled
        from the data where the space has that option and the config leaves it unset."""
        opts = dict(self.space.options)
        known = {f.name for f in dataclasses.fields(space_class(self.space.name).Options)}
        for key, value in (("num_classes", num_classes), ("in_channels", in_channels), ("input_size", input_size)):
            if value is None or key not in known:
                continue
            if key in opts and opts[key] != value:
                raise SchemaError(self.source, f"space.options.{key}", f"{value} to match the dataset, got {opts[key]}")
            opts[key] = value
        return from_mapping(space_class(self.space.name).Options, opts, file=self.source, prefix="space.options")

    def to_dict(self) -> dict[str, Any]:
        data = to_mapping(self)
        data.pop("source", None)
        return data

    def save(self, path: str | Path) -> None:
        """Write the resolved configuration as YAML."""
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load a YAML run configuration; ``overrides`` maps dotted keys (``search.n_trials``) to values."""
    path = Path(path)
    data = load_yaml(path)
    if data is None:
        raise SchemaError(path, "", "expected a mapping of run settings, got an empty file "
                          "(write {} to take every default)")
    return config_from_dict(data, str(path), overrides)


def config_from_dict(data: dict[str, Any], source: str, overrides: dict[str, Any] | None = None) -> RunConfig:
    """A RunConfig from a mapping (as read from YAML), with dotted-key ``overrides``; errors name ``source``."""
    if not isinstance(data, dict):
        raise SchemaError(source, "", f"expected a mapping with keys {user_keys(RunConfig)}, "
                          f"got a {type(data).__name__}")
    data = copy.deepcopy(data)
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for depth, key in enumerate(parents):
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                section = ".".join(parents[: depth + 1])
                raise SchemaError(source, dotted, f"expected a key inside a section, but {section} is a single value, "
                                  f"not a section of keys")
        node[leaf] = value
    cost = data.get("cost")
    for key in (k for k in cost if k in MOVED_COST_KEYS) if isinstance(cost, dict) else ():
        raise SchemaError(source, f"cost.{key}", f"a key of cost.{MOVED_COST_KEYS[key]} now: write it as "
                          f"cost.{MOVED_COST_KEYS[key]}.{key}")
    cfg = from_mapping(RunConfig, data, file=source, internal={"source": source})
    _check_against_space(cfg)
    _check_zoo(cfg)
    return cfg


def _check_against_space(cfg: RunConfig) -> None:
    """The keys whose valid values the search space defines: name, options, fixed and enqueued baselines."""
    try:
        cls = space_class(cfg.space.name)
    except KeyError as exc:
        raise SchemaError(cfg.source, "space.name", str(exc.args[0])) from None
    space = cls(cfg.space_options())
    for key, check in (("search.fixed", lambda: space.fixed_params(cfg.search.fixed)),
                       ("search.enqueue", lambda: space.named_baselines(cfg.search.enqueue))):
        try:
            check()
        except ValueError as exc:
            raise SchemaError(cfg.source, key, str(exc)) from None


def _check_zoo(cfg: RunConfig) -> None:
    """``train.zoo`` names a shipped zoo supernet (:mod:`nas.zoo`, which loads torch, only when set)."""
    if cfg.train.zoo is None:
        return
    from nas import zoo

    if cfg.train.zoo not in zoo.names():
        raise SchemaError(cfg.source, "train.zoo", f"a zoo supernet, one of {zoo.names()}, got {cfg.train.zoo!r}")


def default_config(**sections: Any) -> RunConfig:
    """A RunConfig from keyword sections, e.g. ``default_config(search={"n_trials": 5})``."""
    return config_from_dict({k: (to_mapping(v) if dataclasses.is_dataclass(v) else v) for k, v in sections.items()},
                            "<python>")

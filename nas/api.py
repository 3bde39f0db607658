"""The public Python API: one function per pipeline step, each driven by a :class:`RunConfig`.

    cfg = load_config("configs/quickstart.yaml")
    supernet = train(cfg)                 # QAT supernet -> <run_dir>/supernet.pt (resumes)
    study = search(cfg, supernet)         # Optuna study -> <run_dir>/study.db (resumes)
    path = export(cfg, study)             # chosen Pareto trial -> <run_dir>/exports/trial_<n>/
    net = load(path)                      # standalone early-exit network

    outcome = run(cfg)                    # all of it, wired once (what `nas run` and the quickstart call)

Scripts that set ``cost.workers > 1`` must guard their entry point with
``if __name__ == "__main__":`` (cost workers are spawned processes).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import FrozenTrial

from hwmodel import CostModel
from hwmodel.scheduling import layer_tiles
from hwmodel.schema import SchemaError
from nas.config import RunConfig
from nas.data import DatasetError, Splits, load_dataset
from nas.deploy.network import ExportedNetwork, export_network, load_network
from nas.deploy.onnx import export_onnx
from nas.files import write_text
from nas.report.artifacts import attach_to_study, run_artifact_store
from nas.report.pareto import choose_trial, write_report
from nas.report.plots import plot_exit_costs, plot_ribbon
from nas.study.confirm import STUDY_ATTR, Confirmation, confirm_trials, slice_bounds
from nas.study.evaluator import CandidateEvaluator, candidate_network
from nas.study.modes import GRID, mode_table, named_modes
from nas.study.predictors import ridge_strengths
from nas.study.prescreen import Prescreener
from nas.study.record import TrialRecord
from nas.study.screening import Screener
from nas.study.storage import normalise_url, sqlite_url
from nas.study.study import (
    TrialError,
    enqueue_baselines,
    evaluated_trial,
    open_study,
    run_study,
)
from nas.supernet.calibrate import exit_outputs
from nas.supernet.training import load_supernet, train_supernet
from search_spaces import SearchSpace, Supernet, create_space


@dataclass
class RunPaths:
    """Where a run's artefacts land (all under ``run_dir``)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def checkpoint(self) -> Path:
        return self.root / "supernet.pt"

    @property
    def train_log(self) -> Path:
        return self.root / "train_log.jsonl"

    @property
    def study(self) -> Path:
        return self.root / "study.db"

    @property
    def exports(self) -> Path:
        return self.root / "exports"


def paths(cfg: RunConfig) -> RunPaths:
    """The run folder of a config (created)."""
    root = Path(cfg.run_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return RunPaths(root)


def data_and_space(cfg: RunConfig) -> tuple[Splits, SearchSpace]:
    """The dataset splits and the search space sized for them."""
    splits = load_dataset(cfg.data, cfg.source)
    channels, size, _ = splits.image_shape
    try:
        options = cfg.space_options(splits.num_classes, channels, size)
    except SchemaError as exc:
        from_data = {f"space.options.{k}" for k in ("num_classes", "in_channels", "input_size")
                     if k not in cfg.space.options}  # the options the dataset filled in
        if exc.key not in from_data or not cfg.data.root:  # a config key, or synthetic data: the config's fault
            raise
        raise DatasetError(cfg.data.root, "images", f"{channels}-channel {size}x{size} images with "
                           f"{splits.num_classes} classes to suit space {cfg.space.name!r} ({exc.message})") from None
    return splits, create_space(cfg.space.name, options)


def train(cfg: RunConfig, *, progress: bool = True, data: tuple[Splits, SearchSpace] | None = None) -> Supernet:
    """Train the QAT supernet (or resume / reuse ``<run_dir>/supernet.pt``); with ``train.zoo``, the
    zoo supernet of that name instead of training."""
    p = paths(cfg)
    cfg.save(p.config)
    splits, space = data or data_and_space(cfg)
    if cfg.train.zoo:
        return install_zoo_supernet(cfg, cfg.train.zoo, space)
    return train_supernet(space, splits, cfg.train, p.checkpoint, log_path=p.train_log, progress=progress)


def cost_model(cfg: RunConfig, *, progress: bool = True) -> CostModel:
    """The configured cost model (close it, or use it as a context manager); SchemaError naming
    ``cost.operating_point`` when the accelerator has no such point."""
    cm = CostModel(cfg.cost.accelerator, settings=cfg.cost.zigzag, cache=cfg.cost.cache, workers=cfg.cost.workers,
                   progress=progress)
    try:
        cm.system.operating_point(cfg.cost.operating_point)
    except KeyError as exc:
        cm.close()
        raise SchemaError(cfg.source, "cost.operating_point", str(exc.args[0])) from None
    return cm


def calibration_images(cfg: RunConfig, splits: Splits) -> torch.Tensor | None:
    """The training images each candidate's batch-norm statistics are re-estimated on (None: off)."""
    n = cfg.search.bn_recalibration_samples
    return splits.train.images[:n] if n > 0 else None


def warm_cost_cache(cfg: RunConfig, space: SearchSpace, cm: CostModel) -> dict[str, int]:
    """Cost every layer (tile, under the fused schedule) a candidate of ``space`` can contain under the
    configured schedule, so no trial meets a cold ZigZag run. Returns :meth:`CostModel.fill`'s counts
    plus ``layers`` and ``tiles`` (distinct layers and items costed)."""
    layers = space.all_layer_specs()
    items = layer_tiles(layers, cm, cfg.cost.schedule)
    return {"layers": len(layers), "tiles": len(items), **cm.fill(items, onchip=cfg.cost.schedule.mode == "fused")}


def prepare_study(cfg: RunConfig, space: SearchSpace, storage: str | None = None) -> optuna.Study:
    """Create or resume the run's study (default storage: ``<run_dir>/study.db``), record the run
    folder and space on it, and enqueue the configured baselines if it has no trials yet."""
    p = paths(cfg)
    try:
        fixed = space.fixed_params(cfg.search.fixed)
    except ValueError as exc:
        raise SchemaError(cfg.source, "search.fixed", str(exc)) from None
    study = open_study(cfg.search, storage or sqlite_url(p.root), fixed=fixed)
    study.set_user_attr("run_dir", str(p.root.resolve()))
    study.set_user_attr("space", space.config)
    enqueue_baselines(study, space, cfg.search.enqueue)
    return study


def screener(cfg: RunConfig, space: SearchSpace) -> Screener | None:
    """The multi-fidelity screener the configuration asks for (``search.screening``), or None."""
    if not cfg.search.screening:
        return None
    s = cfg.search
    return Screener(s.screening_candidates, s.screening_picks, s.screening_min_trials,
                    ridge=ridge_strengths(s.surrogate_ridge), seed=s.seed, fixed=space.fixed_params(s.fixed),
                    rivals=s.screening_rivals)


def install_zoo_supernet(cfg: RunConfig, name: str, space: SearchSpace) -> Supernet:
    """Check the zoo supernet ``name`` (hash, space) and place its weights at ``<run_dir>/supernet.pt``,
    so the run's search, workers and exports use it; an existing, different checkpoint is refused."""
    from nas import zoo

    supernet = zoo.load_supernet(name, space)
    p = paths(cfg)
    record = zoo.entry(name)
    if p.checkpoint.is_file():
        if zoo.file_sha256(p.checkpoint) != record.sha256:
            raise zoo.ZooError(f"{p.checkpoint}: expected no checkpoint or zoo supernet {name!r}; this run folder "
                               "holds another supernet (choose another run_dir)")
    else:
        shutil.copyfile(zoo.ZOO_DIR / record.file, p.checkpoint)
        cfg.save(p.config)
    return supernet


def search(cfg: RunConfig, supernet: Supernet | str | None = None, *, storage: str | None = None, progress: bool = True,
           data: tuple[Splits, SearchSpace] | None = None, ready: Callable[[], object] | None = None) -> optuna.Study:
    """Run (or resume) the study until ``search.n_trials`` trials have finished. ``supernet``: a
    trained one, a zoo name (:mod:`nas.zoo`), or None for ``<run_dir>/supernet.pt``. ``ready`` is
    called once everything is loaded, just before the first trial (workers use it to start together)."""
    p = paths(cfg)
    if storage is not None:
        normalise_url(storage)  # a bad URL fails before anything is loaded
    with cost_model(cfg, progress=progress) as cm:  # first: checks the accelerator and its operating point
        cm.start_workers()  # they import ZigZag and build their cores while the data and supernet load
        splits, space = data or data_and_space(cfg)
        if isinstance(supernet, str):
            supernet = install_zoo_supernet(cfg, supernet, space)
        elif supernet is None:
            supernet = load_supernet(space, p.checkpoint)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if not p.config.is_file():  # report and export --run-dir read it
            cfg.save(p.config)
        study = prepare_study(cfg, space, storage)
        evaluator = CandidateEvaluator.from_config(cfg, space, supernet, splits.val.head(cfg.search.val_samples), cm,
                                                   calibration_images(cfg, splits))
        if ready is not None:
            ready()
        run_study(study, space, evaluator, cfg.search.n_trials, progress=progress, objectives=cfg.search.objectives,
                  artifacts=artifact_store(cfg) if cfg.search.trial_plots else None,
                  prescreen=Prescreener(cfg.search.prescreen_min_trials, cfg.search.prescreen_margin,
                                        ridge_strengths(cfg.search.surrogate_ridge))
                  if cfg.search.prescreen else None, screener=screener(cfg, space))
    return study


def export(cfg: RunConfig, study: optuna.Study, trial: int | FrozenTrial | None = None,
           out_dir: str | Path | None = None, *, supernet: Supernet | None = None,
           data: tuple[Splits, SearchSpace] | None = None) -> Path:
    """Export a trial (default: :func:`nas.report.pareto.choose_trial`) as a standalone network folder."""
    p = paths(cfg)
    if trial is None:
        trial = choose_trial(study)
    elif isinstance(trial, int):
        trial = evaluated_trial(study, trial)
    record = TrialRecord.of(trial)
    if record is None:
        raise TrialError(f"trial {trial.number} of study {study.study_name!r} has no evaluated candidate to export")
    splits, space = data or data_and_space(cfg)
    if supernet is None:
        supernet = load_supernet(space, p.checkpoint)
    genotype = record.genotype
    metrics = {"trial": trial.number, "values": list(trial.values or []), **record.attributes,
               "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    out = Path(out_dir) if out_dir else p.exports / f"trial_{trial.number}"
    network = candidate_network(supernet, genotype, calibration_images(cfg, splits))
    a = record.attributes
    grid = sorted({*GRID, *space.options.thresholds})
    modes = mode_table(exit_outputs(network, splits.val, cfg.search.eval_batch_size), a["cumulative_energy_j"],
                       a["cumulative_latency_cycles"], a["clock_hz"], grid)
    with cost_model(cfg, progress=False) as cm:
        network_cost = cm.evaluate(space.layer_graph(genotype), cfg.cost.schedule, cfg.cost.operating_point)

    def extras(folder: Path) -> None:
        named = {k: m.threshold for k, m in named_modes(modes).items()}
        (folder / "modes.json").write_text(json.dumps({"split": "validation", "named": named,
                                                      "modes": [m.to_dict() for m in modes]}, indent=2))
        export_onnx(network, folder / "model.onnx", splits.image_shape,
                    {"layer_bits": dict(record.bits), "exit_labels": list(record.exit_labels),
                     "threshold": genotype.threshold, "space": space.config, "genotype": genotype.to_dict()},
                    list(record.exit_labels))
        plot_ribbon(network_cost, dict(record.bits), folder / "ribbon.png",
                    f"trial {trial.number}: architecture ribbon")
        plot_exit_costs([{**a, "name": f"trial {trial.number}"}], folder / "exit_costs.png")

    path = export_network(space, network, genotype, out, metrics, extras)
    if study is not None:
        attach_artifacts(study, trial, path)
    return path


def confirm(cfg: RunConfig, study: optuna.Study, *, slices: int = 4, images: int = 2000,
            supernet: Supernet | None = None, data: tuple[Splits, SearchSpace] | None = None,
            trials: Sequence[FrozenTrial] | None = None, progress: bool = True) -> list[Confirmation]:
    """Re-score the study's Pareto front (:mod:`nas.study.confirm`): each trial's batch norm re-estimated on
    ``slices`` disjoint slices of ``images`` training images the search did not use, on the validation
    images it was scored on. Stored on the study (user attribute ``confirmed_front``) and in
    ``<run_dir>/confirmed_front.json``; returned in the front's order (by expected EDP). ``trials``: other
    trials of the study to re-score instead of its front (returned, not stored)."""
    from tqdm.auto import tqdm

    from nas.study.study import pareto_trials

    front = list(trials) if trials is not None else (pareto_trials(study) or pareto_trials(study, feasible_only=False))
    if not front:
        raise TrialError(f"study {study.study_name!r} has no complete trial to confirm")
    p = paths(cfg)
    splits, space = data or data_and_space(cfg)
    if supernet is None:
        supernet = load_supernet(space, p.checkpoint)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    try:
        slice_bounds(len(splits.train), cfg.search.bn_recalibration_samples, images, slices)
    except ValueError as exc:
        raise TrialError(f"confirm: {exc}") from None
    bar = tqdm(total=slices * len(front), desc="confirm", unit="evaluation", disable=not progress)

    def advance(done: int, _total: int) -> None:
        bar.update(done - bar.n)

    with cost_model(cfg, progress=False) as cm, bar:
        confirmations = confirm_trials(
            front, lambda calibration: CandidateEvaluator.from_config(
                cfg, space, supernet, splits.val.head(cfg.search.val_samples), cm, calibration, threshold="searched"),
            splits.train.images, skip=cfg.search.bn_recalibration_samples, images=images, slices=slices,
            progress=advance)
    if trials is None:
        rows = [c.to_dict() for c in confirmations]
        study.set_user_attr(STUDY_ATTR, rows)
        write_text(p.root / "confirmed_front.json", json.dumps(rows, indent=2) + "\n")
    return confirmations


def artifact_store(cfg: RunConfig) -> FileSystemArtifactStore:
    """The run's artifact store (files attached to trials; optuna-dashboard shows them)."""
    return run_artifact_store(paths(cfg).root)


def attach_artifacts(study: optuna.Study, trial: FrozenTrial, folder: Path) -> list[str]:
    """Attach an export folder's files to the study as ``trial_<n>-<file>`` and record the folder in
    the study's ``exports`` attribute; returns the artifact ids."""
    ids = attach_to_study(study, folder.iterdir(), f"trial_{trial.number}")
    exports = dict(study.user_attrs.get("exports", {}))
    exports[str(trial.number)] = {"folder": str(folder.resolve()), "artifact_ids": ids}
    study.set_user_attr("exports", exports)
    return ids


def load(path: str | Path) -> ExportedNetwork:
    """Load an exported network (no supernet needed)."""
    return load_network(path)


STEPS = ("data", "train", "search", "report", "export")


@dataclass
class RunOutcome:
    """What :func:`run` produced, filled in step by step (None: that step has not run yet).
    ``export``: the exported Pareto trial's folder, None when no trial met the constraints."""

    splits: Splits | None = None
    space: SearchSpace | None = None
    supernet: Supernet | None = None
    study: optuna.Study | None = None
    report_table: str | None = None
    report_plot: Path | None = None
    export: Path | None = None


def run(cfg: RunConfig, *, progress: bool = True, storage: str | None = None,
        before_step: Callable[[str, RunOutcome], None] | None = None) -> RunOutcome:
    """The whole pipeline: data and space, supernet training, search, report, export of the chosen
    Pareto trial (skipped when no trial is feasible). Each step resumes what a previous run left.
    ``before_step(name, outcome so far)`` is called before each of :data:`STEPS`. Raises
    :class:`SearchFailedError` when every trial failed."""
    from nas.study.study import pareto_trials, raise_if_all_failed

    out = RunOutcome()

    def step(name: str) -> None:
        if before_step is not None:
            before_step(name, out)

    step("data")
    out.splits, out.space = data = data_and_space(cfg)
    step("train")
    out.supernet = train(cfg, progress=progress, data=data)
    step("search")
    out.study = search(cfg, out.supernet, storage=storage, progress=progress, data=data)
    raise_if_all_failed(out.study)
    step("report")
    out.report_table, out.report_plot = write_report(out.study, paths(cfg).root)
    step("export")
    if pareto_trials(out.study):
        out.export = export(cfg, out.study, supernet=out.supernet, data=data)
    return out


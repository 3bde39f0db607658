"""The ``nas`` command line (also ``python -m nas``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.config import RunConfig


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input: printed as one line, no traceback."""
    from hwmodel import CacheError, MappingError, SchemaError
    from nas.data import DatasetError
    from nas.study.storage import StorageError
    from nas.study.study import SearchFailedError, TrialError
    from nas.supernet.training import CheckpointError
    from search_spaces import GenotypeError

    return (SchemaError, DatasetError, CheckpointError, StorageError, CacheError, GenotypeError, MappingError,
            TrialError, SearchFailedError)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs as config overrides (values parsed as YAML)."""
    from hwmodel.schema import parse_yaml

    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"error: --set expects key=value (e.g. search.n_trials=50), got {pair!r}")
        key, value = pair.split("=", 1)
        out[key] = parse_yaml(value, f"--set {key}")
    return out


def _config(args: argparse.Namespace):
    from nas.config import load_config

    zoo_name = getattr(args, "supernet", None)
    if zoo_name and not args.config and not (args.run_dir and (Path(args.run_dir) / "config.yaml").is_file()):
        from nas import zoo

        overrides = parse_overrides(args.set)
        if args.run_dir:
            overrides["run_dir"] = args.run_dir
        return zoo.config(zoo_name, overrides)  # the recipe's data and space, default search settings
    if getattr(args, "run_dir", None) and not args.config:
        path = Path(args.run_dir) / "config.yaml"
    elif args.config:
        path = Path(args.config)
    else:
        raise SystemExit("error: pass --config FILE or --run-dir DIR (a run folder holding config.yaml)")
    overrides = parse_overrides(args.set)
    if args.config and getattr(args, "run_dir", None):  # both: the config's settings, in that folder
        overrides["run_dir"] = args.run_dir
    return load_config(path, overrides)


def cmd_quickstart(args: argparse.Namespace) -> int:
    from nas.quickstart import QUICKSTART_CONFIG, quickstart

    overrides = parse_overrides(args.set)
    if args.run_dir:
        overrides["run_dir"] = args.run_dir
    if args.synthetic and args.config:
        raise SystemExit("nas quickstart: --synthetic and --config: expected one of them, got both")
    quickstart(QUICKSTART_CONFIG if args.synthetic else args.config, overrides)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from nas import api
    from nas.quickstart import constraint_summary

    cfg = _config(args)
    out = api.run(cfg)
    print(out.report_table, f"\nplot: {out.report_plot}", sep="\n")
    if out.export is None:
        print(f"exported: nothing, no trial met the constraints ({constraint_summary(cfg)})")
    else:
        print(f"exported: {out.export}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from nas import api

    cfg = _config(args)
    api.train(cfg)
    print(f"supernet: {api.paths(cfg).checkpoint}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from nas import api
    from nas.report.pareto import write_report
    from nas.study.study import raise_if_all_failed

    cfg = _config(args)
    if args.supernet:
        data = api.data_and_space(cfg)
        supernet = api.install_zoo_supernet(cfg, args.supernet, data[1])
        print(f"supernet: zoo {args.supernet!r} -> {api.paths(cfg).checkpoint}", flush=True)
    else:
        data, supernet = None, None
    if args.workers > 1:
        from nas.study.workers import search_workers

        study = search_workers(cfg, args.workers, args.storage)
    else:
        study = api.search(cfg, supernet, storage=args.storage, data=data)
    raise_if_all_failed(study)
    table, plot = write_report(study, api.paths(cfg).root)
    print(table, f"\nplot: {plot}", sep="\n")
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    from nas import zoo

    names = zoo.names()
    if not names:
        print(f"the zoo ({zoo.ZOO_DIR}) holds no supernet yet")
    for name in names:
        record = zoo.entry(name)
        print(f"{name}: {record.description}")
        print(f"  space {record.space['name']} {record.space['options']}")
        print(f"  file {record.file} ({record.bytes / 1e6:.1f} MB), sha256 {record.sha256[:16]}..., commit "
              f"{record.commit[:10]}")
        for row in record.accuracy:
            print(f"  {row['subnet']:<22} {row['bits']:<5} test accuracy {100 * row['final_exit_accuracy']:.2f} %")
        print(f"  search it: nas search --supernet {name}")
    return 0


def _study(cfg, storage: str | None):
    from nas import api
    from nas.study.storage import sqlite_url
    from nas.study.study import open_study

    url = storage or sqlite_url(api.paths(cfg).root)
    if not storage and not api.paths(cfg).study.is_file():
        raise SystemExit(f"error: {api.paths(cfg).study}: no study yet; run `nas search` first")
    return open_study(cfg.search, url, create=False)


def cmd_report(args: argparse.Namespace) -> int:
    from nas import api
    from nas.report.pareto import write_report

    cfg = _config(args)
    table, plot = write_report(_study(cfg, args.storage), api.paths(cfg).root)
    print(table, f"\nplot: {plot}", sep="\n")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from nas import api

    cfg = _config(args)
    path = api.export(cfg, _study(cfg, args.storage), args.trial, args.out)
    print(f"exported: {path}")
    return 0


def cmd_confirm(args: argparse.Namespace) -> int:
    import statistics

    from nas import api
    from nas.report.pareto import confirmed_front, distinct, format_confirmations

    cfg = _config(args)
    confirmations = api.confirm(cfg, _study(cfg, args.storage), slices=args.slices, images=args.images)
    first = confirmations[0]
    print(f"Pareto front confirmed: batch norm re-estimated on {args.slices} slices of {args.images} training images "
          f"(from image {first.first_image}; the search used the first {cfg.search.bn_recalibration_samples})")
    print(format_confirmations(confirmations))
    kept, networks = confirmed_front(confirmations), [c for c, _again in distinct(confirmations)]
    print(f"searched - confirmed accuracy: mean {100 * statistics.fmean(c.optimism for c in networks):+.2f} points; "
          f"{sum(c.trial in kept for c in networks)} of {len(networks)} networks stay on the front\n"
          f"saved: {api.paths(cfg).root / 'confirmed_front.json'} (and the study's user attribute confirmed_front)")
    return 0


def cmd_modes(args: argparse.Namespace) -> int:
    from nas import api
    from nas.study.modes import format_modes

    net = api.load(args.export)
    if not net.modes:
        raise SystemExit(f"error: {args.export}/modes.json: missing (export again with this version)")
    print(f"{args.export}: operating modes on the validation split")
    print(format_modes(net.modes, net.metrics.get("static_energy_j"), args.alpha))
    if args.energy_budget is not None or args.latency_budget is not None:
        try:
            mode = net.select_mode(args.energy_budget, args.latency_budget)
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
        print(f"within energy <= {args.energy_budget} J and latency <= {args.latency_budget} s: threshold "
              f"{mode.threshold:.2f} (accuracy {mode.accuracy:.4f}, {mode.expected_energy_j * 1e6:.3f} uJ, "
              f"{mode.expected_latency_s * 1e3:.4f} ms)")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    import optuna_dashboard

    from nas import api
    from nas.study.storage import StorageError, sqlite_file, sqlite_url, storage_for

    store = None
    if args.storage and not (args.config or args.run_dir):
        url = args.storage
    else:
        cfg = _config(args)
        url = args.storage or sqlite_url(api.paths(cfg).root)
        store = api.artifact_store(cfg)
    database = sqlite_file(url)
    if database is not None and not database.is_file():
        raise StorageError(f"{url}: expected an existing study file; {database} does not exist (run nas search first)")
    storage = storage_for(url)
    _check_port_free(args.host, args.port)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving the dashboard on {args.host}, reachable from other machines", file=sys.stderr)
    print(f"optuna-dashboard on http://{args.host}:{args.port}/ (storage {url}); Ctrl-C stops it", flush=True)
    optuna_dashboard.run_server(storage, host=args.host, port=args.port, artifact_store=store)
    return 0


def _check_port_free(host: str, port: int) -> None:
    """SystemExit with one line when ``host:port`` cannot be bound (e.g. another dashboard holds it)."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: only a listener blocks
            probe.bind((host, port))
    except OSError as exc:
        raise SystemExit(f"error: --port {port}: expected a free port on {host}, {(exc.strerror or str(exc)).lower()} "
                         f"(another dashboard? pass --port N)") from None


def cmd_warm_cache(args: argparse.Namespace) -> int:
    import time

    from nas import api
    from search_spaces import create_space

    cfg = _config(args)
    if args.check:
        return _check_cost_cache(cfg)
    space = create_space(cfg.space.name, cfg.space_options())
    cfg.cost.workers = args.workers or os.cpu_count() or 1
    t0 = time.perf_counter()
    with api.cost_model(cfg, progress=True) as cm:
        counts = api.warm_cost_cache(cfg, space, cm)
    schedule = cfg.cost.schedule
    print(f"{space.name} on {cfg.cost.accelerator} ({schedule.mode}, tile_rows={schedule.tile_rows}): "
          f"{counts['layers']} distinct layers, {counts['tiles']} distinct tiles, {counts['pairs']} (tile, core) "
          f"pairs; {counts['cached_before']} were cached, {counts['computed']} computed "
          f"({counts['unmappable']} unmappable) in {time.perf_counter() - t0:.0f} s with {cfg.cost.workers} workers; "
          f"cache: {cm.cache.path or 'memory'}")
    return 0


def _check_cost_cache(cfg: RunConfig) -> int:
    """``nas warm-cache --check``: the cache's integrity, one line; exit code 2 when damaged."""
    from hwmodel.cache import CostCache, resolve_cache_path

    path = resolve_cache_path(cfg.cost.cache)
    if path is None:
        print("cost.cache is null: the costs are kept in memory, there is no cache file to check")
        return 0
    if not path.is_file():
        print(f"{path}: no cost cache yet (nothing to check)")
        return 0
    cache = CostCache(path)
    problems = cache.check()
    if problems:
        print(f"error: {path}: {len(problems)} problem(s), first: {problems[0]}; delete the file to start afresh",
              file=sys.stderr)
        return 2
    print(f"{path}: {len(cache)} entries, integrity ok")
    return 0


def cmd_accelerators(args: argparse.Namespace) -> int:
    from hwmodel import accelerators_dir, list_systems, load_system
    from hwmodel.summary import markdown, summarize

    if args.validate:
        spec = load_system(args.validate)
        print(f"{spec.path}: valid\n")
        print(markdown(summarize(spec)))
        return 0
    if args.write_readmes:
        for name in list_systems():
            path = accelerators_dir() / name / "README.md"
            path.write_text(markdown(summarize(load_system(name))))
            print(f"wrote {path}")
        return 0
    for name in list_systems():
        spec = load_system(name)
        summary = summarize(spec)
        cores = ", ".join(f"{c.count} x {c.name}" for c in spec.compute_cores)
        print(f"{spec.name:24s} {cores:32s} {summary['peak_macs_per_cycle']:6d} MAC/cycle  {spec.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nas", description="Hardware-aware NAS of early-exit networks.")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help_text: str, *, config: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if config:
            p.add_argument("--config", help="run configuration YAML (see configs/)")
            p.add_argument("--run-dir", help="a run folder (uses its config.yaml; with --config: where that run goes)")
            p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                           help="override a config key, e.g. --set search.n_trials=50 (repeatable)")
        p.set_defaults(func=func)
        return p

    p = add("quickstart", cmd_quickstart, "Search, export and reload: on Fashion-MNIST with the zoo supernet where "
            "the dataset is installed, else on the built-in synthetic data with a small supernet trained first.")
    p.add_argument("--synthetic", action="store_true",
                   help="the built-in synthetic data (configs/quickstart.yaml) even where Fashion-MNIST is installed")
    add("run", cmd_run, "The whole pipeline for a config: train, search, report, export.")
    add("train", cmd_train, "Train (or resume) the QAT supernet of a config.")
    p = add("search", cmd_search, "Run (or resume) the Optuna study of a config.")
    p.add_argument("--storage", help="Optuna storage URL (default: sqlite file in the run folder); "
                                     "journal:///path/study.log or postgresql://user@host/db for many workers")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes on this host sharing the study, supernet and cost cache (default 1)")
    p.add_argument("--supernet", metavar="NAME", help="start from a pretrained zoo supernet (`nas zoo` lists them; "
                                                       "without --config: its recipe's data and space)")
    p = add("zoo", cmd_zoo, "List the pretrained supernets of the model zoo with their accuracy.", config=False)
    p = add("report", cmd_report, "Print the Pareto table and write pareto.json / pareto.png.")
    p.add_argument("--storage", help="Optuna storage URL (default: sqlite file in the run folder)")
    p = add("export", cmd_export, "Export a trial as a standalone early-exit network.")
    p.add_argument("--trial", type=int, help="trial number (default: the lowest-EDP Pareto trial within 1 point "
                                             "of the best accuracy; on the confirmed values once `nas confirm` "
                                             "has confirmed the front)")
    p.add_argument("--out", help="output folder (default: <run_dir>/exports/trial_<n>)")
    p.add_argument("--storage", help="Optuna storage URL (default: sqlite file in the run folder)")
    p = add("confirm", cmd_confirm, "Re-score the Pareto front with batch norm re-estimated on several slices of "
                                     "training images the search did not use: how far to trust its accuracies.")
    p.add_argument("--slices", type=int, default=4, help="disjoint slices of training images (default 4)")
    p.add_argument("--images", type=int, default=2000, help="training images per slice (default 2000)")
    p.add_argument("--storage", help="Optuna storage URL (default: sqlite file in the run folder)")
    p = add("modes", cmd_modes, "Show an exported network's operating modes, the decision cost for an "
                                "alpha, and the mode that fits an energy or latency budget.", config=False)
    p.add_argument("export", help="an exported network folder")
    p.add_argument("--alpha", type=float, help="decision cost C = alpha * E/E_static + (1 - alpha) * error")
    p.add_argument("--energy-budget", type=float, metavar="J", help="expected energy budget per inference (J)")
    p.add_argument("--latency-budget", type=float, metavar="S", help="expected latency budget per inference (s)")
    p = add("warm-cache", cmd_warm_cache, "Cost every distinct layer of the config's search space on its "
                                          "accelerator, in parallel, into the persistent cost cache.")
    p.add_argument("--workers", type=int, help="processes (default: one per CPU core)")
    p.add_argument("--check", action="store_true", help="only check the cache's integrity (after a crash, say)")
    p = add("dashboard", cmd_dashboard, "Open the run's study in optuna-dashboard.")
    p.add_argument("--storage", help="Optuna storage URL instead of a run folder")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080)
    p = add("accelerators", cmd_accelerators, "List the shipped accelerator systems, or validate one.", config=False)
    p.add_argument("--validate", metavar="FILE_OR_NAME", help="validate one system file and print its summary "
                                                               "(peak MAC/cycle, memories, bandwidths)")
    p.add_argument("--write-readmes", action="store_true",
                   help="regenerate accelerators/<system>/README.md from the system files")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except _user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130

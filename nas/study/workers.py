"""Many search workers on one study: N processes, one storage, one supernet, one cost cache.

The parent trains (or reuses) the supernet and creates the study (enqueuing its baselines once);
then N spawned worker processes each run :func:`nas.api.search` on the same storage URL until the
study has ``search.n_trials`` finished trials. Every worker loads the supernet checkpoint read-only
and shares the SQLite cost cache (WAL mode, safe across processes). Use a PostgreSQL URL for
workers on several hosts (``nas search --storage postgresql://... --workers N`` on each), a journal
file (``journal:///path/study.log``) or the default SQLite file for one host.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import replace
from typing import Any

import optuna

from nas.config import RunConfig


def _worker(cfg: RunConfig, storage: str, threads: int, start: Any) -> None:
    import torch

    from nas import api

    torch.set_num_threads(threads)
    # start together once every worker has loaded (otherwise the first one up can take every trial)
    api.search(cfg, storage=storage, progress=False, ready=lambda: start.wait(timeout=600))


def search_workers(cfg: RunConfig, workers: int, storage: str | None = None, *, progress: bool = True) -> optuna.Study:
    """Run (or resume) the study with ``workers`` processes on this host; returns the study."""
    from tqdm.auto import tqdm

    from nas import api
    from nas.study.storage import sqlite_url
    from nas.study.study import finished_trials, open_study

    if workers < 1:
        raise ValueError(f"workers: expected a positive number of processes, got {workers}")
    data = api.data_and_space(cfg)
    api.train(cfg, data=data, progress=progress)  # the checkpoint every worker loads (reused if trained)
    url = storage or sqlite_url(api.paths(cfg).root)
    study = api.prepare_study(cfg, data[1], url)  # once, before the workers race for trials
    # each worker costs in-process (no nested pools); cores are split between the workers
    worker_cfg = replace(cfg, cost=replace(cfg.cost, workers=1))
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(workers)
    # each worker samples from its own seed, or all would propose the same candidates
    procs = [ctx.Process(target=_worker,
                         args=(replace(worker_cfg, search=replace(cfg.search, seed=cfg.search.seed + 7919 * i)),
                               url, threads, start), name=f"eenas-worker-{i}")
             for i in range(workers)]
    for proc in procs:
        proc.start()
    bar = tqdm(total=cfg.search.n_trials, initial=finished_trials(study), desc=f"search ({workers} workers)",
               unit="trial", disable=not progress)
    try:
        while any(proc.is_alive() for proc in procs):
            time.sleep(1.0)
            bar.n = min(cfg.search.n_trials, finished_trials(study))
            bar.refresh()
    finally:
        for proc in procs:
            if proc.is_alive():  # interrupted: stop the workers (their running trials are retried later)
                proc.terminate()
            proc.join()
        bar.close()
    failed = [proc.name for proc in procs if proc.exitcode != 0]
    if failed:
        raise RuntimeError(f"search workers {failed} exited with an error (their output is above); "
                           f"run the same command again to resume")
    return open_study(cfg.search, url)

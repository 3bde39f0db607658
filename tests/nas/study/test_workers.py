"""Many workers on one study: real PostgreSQL, real processes; a worker killed mid-trial."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from optuna.trial import TrialState

from nas import api
from nas.study.study import finished_trials
from nas.study.workers import search_workers
from tests.helpers import running_trial
from tests.nas.conftest import tiny_config


def _sharing_supernet(tiny_run, run_dir, **search):
    """A new run (its own study) that reuses the tiny run's trained supernet."""
    cfg = tiny_run[0]
    run = tiny_config(run_dir, search={"study_name": "shared", **search})
    shutil.copy(api.paths(cfg).checkpoint, api.paths(run).checkpoint)
    run.save(api.paths(run).config)
    return run


def test_workers_on_postgres_lose_and_duplicate_no_trial(tiny_run, postgres_url, tmp_path):
    run = _sharing_supernet(tiny_run, tmp_path / "run", n_trials=12)
    study = search_workers(run, 3, postgres_url, progress=False)
    trials = study.trials
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # none lost
    assert 12 <= len(trials) <= 12 + 2  # the budget is shared: 3 workers overshoot by at most 2
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t._trial_id for t in trials}) == len(trials)
    assert [t.user_attrs.get("baseline") for t in trials].count("static") == 1  # enqueued once, run once
    assert len({t.user_attrs["worker"] for t in trials}) >= 2, "the trials were not shared between workers"
    assert all(t.user_attrs["worker"].split(":")[1] != str(os.getpid()) for t in trials)
    # the same command again resumes: the budget is spent, nothing new runs
    again = search_workers(run, 2, postgres_url, progress=False)
    assert len(again.trials) == len(trials)


def test_a_trial_whose_worker_died_is_failed_and_retried(tiny_run, tmp_path):
    _cfg, supernet, _study, data = tiny_run
    run = _sharing_supernet(tiny_run, tmp_path / "run", n_trials=3, heartbeat_s=1, enqueue=[], trial_plots=False)
    log = open(tmp_path / "worker.log", "w")
    worker = subprocess.Popen([sys.executable, "-m", "nas", "search", "--run-dir", run.run_dir],
                              stdout=log, stderr=subprocess.STDOUT)
    deadline, killed = time.monotonic() + 300, None
    try:
        while killed is None and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.01)
            killed = running_trial(api.paths(run).study)
            if killed is not None:
                worker.kill()
    finally:
        worker.kill()
        worker.wait()
        log.close()
    assert killed is not None, f"no running trial seen; worker output:\n{(tmp_path / 'worker.log').read_text()[-3000:]}"
    time.sleep(4)  # 3 missed heartbeats of 1 s
    study = api.search(run, supernet, progress=False, data=data)
    dead = study.trials[killed]
    assert dead.state == TrialState.FAIL
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    # the retry replays what the dead trial had sampled (it may have died before sampling everything)
    assert dead.params.items() <= retries[0].params.items()
    assert finished_trials(study) == 3  # the retry replaces the dead trial in the budget
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 3

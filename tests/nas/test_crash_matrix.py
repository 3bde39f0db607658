"""The crash matrix: ``kill -9`` of training, of a search worker, of ``warm-cache`` and of export, each
at a random point, then the same command again.

Each case runs the real ``python -m nas`` command in its own process, waits until it is writing
(a checkpoint, a running trial, a cache file, an export folder), kills it with SIGKILL after a random
delay and reruns the command. The delays come from ``EENAS_CRASH_SEED`` (printed with every
failure; random when unset), so a failing point can be replayed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState

from hwmodel.cache import CostCache
from nas import api
from nas.config import load_config
from nas.deploy.network import load_network
from nas.files import remove_stale_temporaries
from nas.study.storage import storage_for
from nas.study.study import finished_trials
from nas.supernet.training import load_checkpoint
from tests.helpers import running_trial
from tests.nas.conftest import tiny_config

SEED = int(os.environ.get("EENAS_CRASH_SEED", time.time_ns() % 2**31))
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    return random.Random(f"{SEED}-{request.node.name}")


def nas(*argv: str, log: Path) -> subprocess.Popen:
    """``python -m nas argv`` in its own process, output appended to ``log``."""
    with log.open("a") as fh:
        return subprocess.Popen([sys.executable, "-m", "nas", *argv], stdout=fh, stderr=subprocess.STDOUT, cwd=REPO)


def finish(*argv: str, log: Path, timeout: float = 300) -> str:
    """Run ``python -m nas argv`` to the end; assert exit code 0; return its output."""
    proc = nas(*argv, log=log)
    assert proc.wait(timeout) == 0, f"nas {' '.join(argv)} failed (EENAS_CRASH_SEED={SEED}):\n{log.read_text()[-3000:]}"
    return log.read_text()


def kill_when(proc: subprocess.Popen, writing: Callable[[], bool], delay_s: float, log: Path,
              timeout: float = 300) -> None:
    """Once ``writing()`` holds, wait ``delay_s`` and SIGKILL ``proc``; assert it was still running."""
    deadline = time.monotonic() + timeout
    while not writing():
        assert proc.poll() is None, f"it ended before writing anything (seed {SEED}):\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"nothing written in {timeout} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.005)
    time.sleep(delay_s)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert alive, f"it finished within the {delay_s:.2f} s delay: the kill came too late (seed {SEED})"


def leftovers(folder: Path, name: str) -> list[str]:
    """Temporaries of ``name`` (``.name.tmpPID`` / ``.name.oldPID``) still in ``folder``."""
    return sorted(p.name for p in folder.glob(f".{name}.*"))


def write_config(path: Path, run_dir: Path, **sections: dict) -> Path:
    data: dict = {"run_dir": str(run_dir), "data": {"name": "synthetic", "n_train": 128, "n_val": 64, "n_test": 64},
                  "space": {"name": "mobilenetv2_cifar", "options": {
                      "width_mult": 0.25, "bits_choices": [8], "kernel_choices": [3], "expansion_choices": [6],
                      "exit_points": [3]}},
                  "train": {"epochs": 3, "batch_size": 64, "augment": False, "sandwich": False, "random_subnets": 1,
                            "threads": 2},
                  "cost": {"workers": 1, "cache": None}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    path.write_text(yaml.safe_dump(data))
    return path


def test_training_killed_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path: Path, rng: random.Random) -> None:
    config = write_config(tmp_path / "killed.yaml", tmp_path / "killed")
    checkpoint, log = tmp_path / "killed" / "supernet.pt", tmp_path / "train.log"
    proc = nas("train", "--config", str(config), log=log)
    kill_when(proc, checkpoint.is_file, rng.uniform(0.0, 1.0), log)  # after epoch 1, somewhere in the rest
    killed_at = load_checkpoint(checkpoint)["epoch"]  # whatever the kill hit, the checkpoint loads
    assert 1 <= killed_at <= 3
    finish("train", "--config", str(config), log=log)
    threads = torch.get_num_threads()
    try:  # the same recipe uninterrupted, in this process (same thread count)
        api.train(load_config(write_config(tmp_path / "whole.yaml", tmp_path / "whole")), progress=False)
    finally:
        torch.set_num_threads(threads)
    resumed, whole = load_checkpoint(checkpoint), load_checkpoint(tmp_path / "whole" / "supernet.pt")
    assert resumed["epoch"] == whole["epoch"] == 3
    different = [k for k in whole["state_dict"] if not torch.equal(resumed["state_dict"][k], whole["state_dict"][k])]
    assert not different, f"killed after epoch {killed_at}, resumed weights differ (seed {SEED}): {different[:5]}"
    assert leftovers(checkpoint.parent, checkpoint.name) == []


def test_search_worker_killed_reaches_its_budget_without_a_duplicate(tiny_run, tmp_path: Path,
                                                                      rng: random.Random) -> None:
    run = tiny_config(tmp_path / "run", search={"study_name": "crash", "n_trials": 4, "enqueue": [],
                                                 "trial_plots": False})
    shutil.copy(api.paths(tiny_run[0]).checkpoint, api.paths(run).checkpoint)
    run.save(api.paths(run).config)
    db, log = api.paths(run).study, tmp_path / "search.log"
    proc = nas("search", "--run-dir", run.run_dir, log=log)
    kill_when(proc, lambda: running_trial(db) is not None, rng.uniform(0.0, 1.0), log)
    finish("search", "--run-dir", run.run_dir, log=log)  # at once: no waiting for missed heartbeats
    study = optuna.load_study(study_name="crash", storage=storage_for(f"sqlite:///{db}"))
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert finished_trials(study) == len(complete) == 4, [(t.number, t.state) for t in study.trials]
    assert not study.get_trials(states=(TrialState.RUNNING,))
    evaluated = [json.dumps(t.user_attrs["genotype"], sort_keys=True) for t in complete
                 if "duplicate_of" not in t.user_attrs]
    assert len(evaluated) == len(set(evaluated)), "a genotype was evaluated twice"
    for dead in study.get_trials(states=(TrialState.FAIL,)):
        assert "died" in dead.user_attrs["fail_reason"]


@pytest.mark.slow  # three CLI processes, ~40 s; concurrent writers and a corrupt file: tests/hwmodel/test_cache.py
def test_warm_cache_killed_leaves_a_sound_cache_that_the_rerun_completes(tmp_path: Path, rng: random.Random) -> None:
    cache = tmp_path / "costs.sqlite"
    config = write_config(tmp_path / "c.yaml", tmp_path / "run", cost={"cache": str(cache)})
    log = tmp_path / "warm.log"
    proc = nas("warm-cache", "--config", str(config), "--workers", "1", log=log)
    kill_when(proc, cache.is_file, rng.uniform(0.0, 4.0), log)
    assert CostCache(cache).check() == []
    assert "integrity ok" in finish("warm-cache", "--config", str(config), "--check", log=log)
    kept = len(CostCache(cache))
    out = finish("warm-cache", "--config", str(config), "--workers", "1", log=log).splitlines()[-1]
    assert f"{kept} were cached" in out, out
    assert CostCache(cache).check() == []


@pytest.mark.slow  # three CLI processes, ~40 s; the atomic replace in process: tests/nas/deploy/test_network.py
def test_export_killed_never_leaves_a_partial_folder(tiny_run, tmp_path: Path, rng: random.Random) -> None:
    cfg, _supernet, study, _data = tiny_run
    trial = next(t.number for t in study.trials if t.state == TrialState.COMPLETE)
    out, log = tmp_path / "exported", tmp_path / "export.log"
    argv = ("export", "--run-dir", cfg.run_dir, "--trial", str(trial), "--out", str(out))

    def writing() -> bool:
        return bool(list(tmp_path.glob(".exported.tmp*")))

    kill_when(nas(*argv, log=log), writing, rng.uniform(0.0, 2.0), log)
    assert not out.exists() or load_network(out).genotype  # absent, or complete
    finish(*argv, log=log)
    first = load_network(out)
    assert leftovers(tmp_path, out.name) == []
    kill_when(nas(*argv, log=log), writing, rng.uniform(0.0, 2.0), log)  # killed while replacing it
    assert leftovers(tmp_path, out.name)  # the dead writer's temporary, hidden ...
    remove_stale_temporaries(out)  # ... is what the next export clears first
    assert leftovers(tmp_path, out.name) == []
    assert load_network(out).genotype == first.genotype  # the old export or the new one, whole

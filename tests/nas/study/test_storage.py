"""Study storages: URL forms, and the RDB storage that writes a trial in few transactions."""

from __future__ import annotations

import pickle
import sqlite3

import optuna
import pytest
import sqlalchemy
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.storages import RDBStorage

from nas.study.storage import BatchedRDBStorage, StorageError, normalise_url, send_held_writes, storage_for, worker_id

PARAMS = 150  # about what a trial of this project's spaces suggests
ATTRS = 40


def test_storage_url_errors_are_clear():
    with pytest.raises(StorageError, match="expected an Optuna storage URL"):
        storage_for("notadb://nowhere")
    with pytest.raises(StorageError, match="would live in memory"):
        storage_for("sqlite:///:memory:")
    assert normalise_url("postgresql://u@h/db") == normalise_url("postgres://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert normalise_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"


def _trial(study: optuna.Study, tag: int) -> None:
    """One trial the way the objective writes it: many parameters, many user attributes, a result."""
    trial = study.ask()
    for k in range(PARAMS):
        trial.suggest_categorical(f"p{k}", ["a", "b", "c"])
    trial.suggest_float("x", 0.0, 1.0)
    for k in range(ATTRS):
        trial.set_user_attr(f"u{k}", {"tag": tag, "k": [k, k + 1]})
    trial.set_user_attr("u0", "overwritten")  # the last value set is the one stored
    study.tell(trial, [0.5 + tag, 1.0])


def _commits(storage: RDBStorage) -> list[int]:
    count = [0]
    sqlalchemy.event.listen(storage.engine, "commit", lambda _conn: count.__setitem__(0, count[0] + 1))
    return count


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # ask() and tell(), on purpose
def test_a_trial_is_written_in_a_few_transactions_and_reads_back_the_same(tmp_path):
    batched = storage_for(f"sqlite:///{tmp_path / 'batched.db'}")
    plain = RDBStorage(f"sqlite:///{tmp_path / 'plain.db'}")
    counts = {}
    for name, storage in (("batched", batched), ("plain", plain)):
        study = optuna.create_study(storage=storage, study_name="s", directions=["maximize", "minimize"],
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        _trial(study, 0)  # the first trial also learns the study's distributions
        commits = _commits(storage)
        _trial(study, 1)
        counts[name] = commits[0]
    assert counts["plain"] >= PARAMS + ATTRS  # one transaction per write
    assert counts["batched"] <= 8, counts
    # a fresh reader of each file (another process would be the same) finds identical trials, but for the
    # worker the batched storage stamps on every trial it starts
    def stored(path, worker):
        trials = optuna.load_study(study_name="s", storage=f"sqlite:///{path}").trials
        assert [t.user_attrs.pop("worker", None) for t in trials] == [worker] * 2
        return [(t.number, t.state, t.values, t.params, t.distributions, t.user_attrs) for t in trials]

    assert stored(tmp_path / "batched.db", worker_id()) == stored(tmp_path / "plain.db", None)
    assert stored(tmp_path / "batched.db", worker_id())[1][5]["u0"] == "overwritten"


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_held_writes_are_sent_before_anything_reads_the_storage(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage_for(url), study_name="s")
    reader = RDBStorage(url)  # another connection: sees only what was committed
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("tag", "w")
    seen = reader.get_trial(trial._trial_id)
    assert seen.params == {} and seen.user_attrs == {"worker": worker_id()}  # held; the worker came with ask()
    study.get_trials()  # any read of the batched storage sends them first
    seen = reader.get_trial(trial._trial_id)
    assert set(seen.params) == {"x"} and seen.user_attrs == {"worker": worker_id(), "tag": "w"}
    trial.set_user_attr("later", 1)
    send_held_writes(study)  # or on demand
    assert reader.get_trial(trial._trial_id).user_attrs["later"] == 1


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_bad_writes_fail_where_they_are_made(tmp_path):
    study = optuna.create_study(storage=storage_for(f"sqlite:///{tmp_path / 'study.db'}"), study_name="s")
    first = study.ask()
    first.suggest_float("x", 0.0, 1.0)
    study.tell(first, 1.0)
    second = study.ask()
    with pytest.raises(ValueError, match="different distribution"):  # the study knows x as a float
        second.suggest_categorical("x", ["a", "b"])
    with pytest.raises(TypeError, match="JSON serializable"):
        second.set_user_attr("bad", object())
    study.tell(second, 2.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):  # finished: refused when sent
        study._storage.set_trial_user_attr(second._trial_id, "late", 1)
        send_held_writes(study)
    assert "late" not in study.trials[1].user_attrs


def test_sqlite_files_use_a_write_ahead_log_and_the_storage_pickles(tmp_path):
    path = tmp_path / "study.db"
    storage = storage_for(f"sqlite:///{path}")
    optuna.create_study(storage=storage, study_name="s")
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert isinstance(storage, BatchedRDBStorage)
    again = pickle.loads(pickle.dumps(storage))  # as multiprocessing sends it
    trial_id = again.create_new_trial(again.get_study_id_from_name("s"))
    again.set_trial_param(trial_id, "x", 0.25, FloatDistribution(0.0, 1.0))
    again.set_trial_param(trial_id, "c", 1.0, CategoricalDistribution(["a", "b"]))
    assert again.get_trial(trial_id).params == {"x": 0.25, "c": "b"}

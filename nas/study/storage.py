"""Study storages: the URL forms a run accepts, and an RDB storage that writes a trial in few transactions.

A trial of this project's spaces suggests about 150 parameters and sets about 40 user attributes.
Optuna's :class:`~optuna.storages.RDBStorage` gives each of those writes its own session and
transaction (on SQLite with its default journal, an fsync each): most of a trial's time outside
the evaluator (``benchmarks/study_overhead.py`` measures it). :class:`BatchedRDBStorage` holds a trial's parameter and
user-attribute writes and sends them in one transaction as soon as anything else touches the
storage (a read, a state change, a heartbeat), so every reader, in this process or another, sees
them as before; only a process killed within those milliseconds loses them, and its trial is
failed and retried like any trial whose worker died. A trial is stamped with its ``worker`` (host and
process id) in the transaction that starts it (:class:`WorkerJournalStorage`: in the journal entry
that creates it), so a restart can tell a dead worker's trial from a live one however early the
kill came. SQLite study files are opened in WAL mode with ``synchronous=NORMAL``: a crashed process
loses nothing committed; a power cut may lose the last commits but never corrupts the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import inspect
import json
import os
import socket
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, check_distribution_compatibility, distribution_to_json
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy import orm as sqlalchemy_orm


class StorageError(ValueError):
    """A storage URL that Optuna cannot open (names the URL and what was expected)."""


def worker_id() -> str:
    """This process as a trial's ``worker`` user attribute names it: ``host:pid`` (read at each call, so a
    forked process names itself)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class BatchedRDBStorage(RDBStorage):
    """An :class:`~optuna.storages.RDBStorage` that holds parameter and user-attribute writes and sends
    them together, in one transaction, before any other call, and stamps every trial it starts with
    its ``worker`` in the starting transaction (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._held: list[tuple[str, tuple[Any, ...]]] = []
        self._held_lock = threading.RLock()
        super().__init__(*args, **kwargs)

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state.pop("_held_lock", None)
        state["_held"] = []
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._held_lock = threading.RLock()

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: BaseDistribution) -> None:
        self._set_trial_param(trial_id, param_name, param_value_internal, distribution, None)

    def _set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                         distribution: BaseDistribution, previous_distribution: BaseDistribution | None) -> None:
        if previous_distribution is not None:  # the caller knows the study's distribution: fail here, not later
            check_distribution_compatibility(previous_distribution, distribution)
        with self._held_lock:
            self._held.append(("param", (trial_id, param_name, param_value_internal, distribution,
                                         previous_distribution)))

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        json.dumps(value)  # a value that cannot be stored fails here, where it was set
        with self._held_lock:
            self._held.append(("user_attr", (trial_id, key, value)))

    def _get_prepared_new_trial(self, study_id: int, template_trial: FrozenTrial | None,
                                session: sqlalchemy_orm.Session) -> models.TrialModel:
        trial = super()._get_prepared_new_trial(study_id, template_trial, session)
        if trial.state == TrialState.RUNNING:  # asked for (not a queued or finished one): this process runs it
            self._stamp_worker(session, trial.trial_id)
        return trial

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Sequence[float] | None = None) -> bool:
        self.flush()
        if state != TrialState.RUNNING or values is not None:
            return super().set_trial_state_values(trial_id, state, values)
        try:  # a queued trial taken by this process: started and stamped in one transaction
            with _create_scoped_session(self.scoped_session) as session:
                trial = models.TrialModel.find_or_raise_by_id(trial_id, session, for_update=True)
                self.check_trial_is_updatable(trial_id, trial.state)
                if trial.state != TrialState.WAITING:
                    return False  # another worker took it first
                trial.state, trial.datetime_start = TrialState.RUNNING, datetime.now()
                self._stamp_worker(session, trial_id)
        except sqlalchemy_exc.IntegrityError:
            return False
        return True

    def _stamp_worker(self, session: sqlalchemy_orm.Session, trial_id: int) -> None:
        """Record this process as the trial's ``worker`` (replacing a retried trial's dead one)."""
        self._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial_id, "worker",
                                            worker_id())

    def flush(self) -> None:
        """Send the held writes in one transaction (nothing to do when none are held)."""
        with self._held_lock:
            if not self._held:
                return
            held, self._held = self._held, []  # taken first: the checks below call wrapped methods
            with _create_scoped_session(self.scoped_session, True) as session:
                for trial_id in dict.fromkeys(args[0] for _, args in held):  # each trial looked up once
                    trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
                    self.check_trial_is_updatable(trial_id, trial.state)
                attrs: dict[tuple[int, str], Any] = {}
                for kind, args in held:
                    if kind == "user_attr":
                        attrs[args[0], args[1]] = args[2]  # the last value set wins
                    elif args[4] is None:  # the study's distribution is not known here yet: Optuna looks it up
                        self._set_trial_param_without_commit(session, *args)
                    else:
                        trial_id, name, value, distribution, _ = args
                        session.add(models.TrialParamModel(trial_id=trial_id, param_name=name, param_value=value,
                                                           distribution_json=distribution_to_json(distribution)))
                user = models.TrialUserAttributeModel
                for trial_id in dict.fromkeys(t for t, _ in attrs):  # replaced: deleted, then inserted
                    keys = [k for t, k in attrs if t == trial_id]
                    session.query(user).filter(user.trial_id == trial_id, user.key.in_(keys)).delete(
                        synchronize_session=False)
                session.add_all([user(trial_id=t, key=k, value_json=json.dumps(v)) for (t, k), v in attrs.items()])


class WorkerJournalStorage(JournalStorage):
    """Optuna's :class:`~optuna.storages.JournalStorage` that names the ``worker`` of every trial it starts:
    in the entry that creates a new trial, and right after taking a queued one (the next entry)."""

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        if template_trial is None:  # asked for: running in this process from its first entry
            template_trial = FrozenTrial(
                number=-1, trial_id=-1, state=TrialState.RUNNING, value=None, values=None,
                datetime_start=datetime.now(), datetime_complete=None, params={}, distributions={},
                user_attrs={"worker": worker_id()}, system_attrs={}, intermediate_values={})
        return super().create_new_trial(study_id, template_trial)

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Sequence[float] | None = None) -> bool:
        started = super().set_trial_state_values(trial_id, state, values)
        if started and state == TrialState.RUNNING:  # a queued trial this process took
            self.set_trial_user_attr(trial_id, "worker", worker_id())
        return started


def _flushing(method: Callable[..., Any]) -> Callable[..., Any]:
    def call(self: BatchedRDBStorage, *args: Any, **kwargs: Any) -> Any:
        self.flush()
        return method(self, *args, **kwargs)

    call.__name__, call.__doc__ = method.__name__, method.__doc__
    return call


# every other method of RDBStorage, public or called by Optuna's cache, sends the held writes first
for _name in dir(RDBStorage):
    _method = inspect.getattr_static(RDBStorage, _name)
    if (inspect.isfunction(_method) and not _name.startswith("__") and not _name.endswith("_without_commit")
            and _name not in vars(BatchedRDBStorage)):
        setattr(BatchedRDBStorage, _name, _flushing(_method))


def storage_for(url: str, heartbeat_s: int = 30) -> optuna.storages.BaseStorage:
    """The storage of a URL.

    ``sqlite:///file.db`` or ``postgresql://user@host/db``: a :class:`BatchedRDBStorage` with heartbeats
    every ``heartbeat_s`` seconds, so a trial whose worker died is failed after 3 silent heartbeats
    and retried once (by the next trial any worker starts). ``journal:///path/file.log``: Optuna's
    journal file storage (:class:`WorkerJournalStorage`), for several processes on one host without a
    database (no heartbeats).
    """
    if url.startswith("journal:"):
        path = url[len("journal:"):].removeprefix("//")
        try:
            return WorkerJournalStorage(JournalFileBackend(path))
        except OSError as exc:
            raise StorageError(f"{url}: expected a writable journal file path ({exc})") from None
    url = normalise_url(url)
    database = sqlite_file(url)
    try:
        with warnings.catch_warnings(), _creation_lock(database):
            # heartbeats are "experimental" in Optuna 5, and the supported way
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # SQLite: wait up to a minute for another worker's write lock instead of failing after 5 s
            engine = {"connect_args": {"timeout": 60}} if database else None
            storage = BatchedRDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat_s,
                                        grace_period=3 * heartbeat_s,
                                        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises many types for bad URLs
        raise StorageError(f"{url}: expected an Optuna storage URL such as sqlite:///path/study.db or "
                           f"postgresql://user@127.0.0.1/db ({type(exc).__name__}: {exc})") from None
    if database is not None:
        _write_ahead_log(storage)
    return storage


def _write_ahead_log(storage: RDBStorage) -> None:
    """Open every connection of a SQLite storage in WAL mode with ``synchronous=NORMAL`` (a commit
    without an fsync; see the module docstring)."""
    import sqlalchemy

    def pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # the connections opened to create the schema did not run it


def normalise_url(url: str) -> str:
    """``postgresql://`` (and ``postgres://``) with the PostgreSQL driver that is installed named in it:
    SQLAlchemy's default for the bare form may be a driver this environment lacks. A bare
    ``sqlite://``, ``sqlite:///`` or ``sqlite:///:memory:`` (an in-memory database, lost when the
    process ends) is refused."""
    if url.startswith("sqlite:") and sqlite_file(url) is None:
        raise StorageError(f"{url}: expected a study file after sqlite:/// (e.g. sqlite:///runs/x/study.db); "
                           "without one the study would live in memory and be lost when the process ends")
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            driver = next((d for d in ("psycopg2", "psycopg") if importlib.util.find_spec(d) is not None), None)
            if driver is None:
                raise StorageError(f"{url}: expected a PostgreSQL driver (pip install psycopg2-binary)")
            return f"postgresql+{driver}://{url[len(bare):]}"
    return url


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for other URLs or in-memory ones)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


@contextlib.contextmanager
def _creation_lock(database: Path | None) -> Iterator[None]:
    """Hold an exclusive lock next to a SQLite study file while its schema is created or checked, so
    workers started together on a new file do not race on it (no-op for other storages)."""
    if database is None or not database.parent.is_dir():
        yield
        return
    with open(database.parent / f".{database.name}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def sqlite_url(run_dir: str | Path) -> str:
    """Storage URL of a run folder's study file."""
    return f"sqlite:///{(Path(run_dir) / 'study.db').resolve()}"


def send_held_writes(study: optuna.Study) -> None:
    """Send now what a :class:`BatchedRDBStorage` under ``study`` holds (nothing to do for other storages):
    for a write that must outlive the process at once."""
    storage = getattr(study._storage, "_backend", study._storage)  # Optuna wraps an RDB storage in its cache
    if isinstance(storage, BatchedRDBStorage):
        storage.flush()

"""Persistent per-layer cost cache: SQLite in WAL mode, safe for several processes at once.

Keys are hashes of everything that changes a layer's cost (core files, layer shape and bits,
mapper settings, package versions); values are JSON. Writes are single transactions, so a crash
never leaves a half-written entry; readers never block writers (WAL).
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import platformdirs

CACHE_ENV = "EENAS_CACHE_DIR"


def default_cache_path() -> Path:
    """``$EENAS_CACHE_DIR/costs.sqlite``, else the platform's user cache folder for ``eenas``
    (platformdirs: ``$XDG_CACHE_HOME/eenas`` or ``~/.cache/eenas`` on Linux)."""
    root = os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("eenas", appauthor=False)
    return Path(root) / "costs.sqlite"


def resolve_cache_path(setting: str | Path | None) -> Path | None:
    """The file of a ``cost.cache`` setting: ``"default"`` (:func:`default_cache_path`), a path, or
    ``None`` (memory only)."""
    if setting is None:
        return None
    return default_cache_path() if setting == "default" else Path(setting)


class CacheError(RuntimeError):
    """The cache file exists but is not a usable cost cache."""


class CostCache:
    """Key -> JSON value store. ``path=None`` keeps everything in memory (nothing persisted)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._memory: dict[str, Any] = {}
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        if self.path is not None:
            self._connect()

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + 60.0
        for attempt in itertools.count():
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("CREATE TABLE IF NOT EXISTS costs (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                break
            except sqlite3.DatabaseError as exc:
                conn.close()
                # switching a new file to WAL while another process does the same can answer "locked"
                # at once, without waiting on the busy timeout: try again shortly
                locked = isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
                if not locked or time.monotonic() > deadline:
                    raise CacheError(f"{self.path}: expected an SQLite cost cache ({exc}); "
                                     "delete the file to start afresh") from None
                time.sleep(min(0.5, 0.01 * 2 ** attempt))
        self._conn, self._pid = conn, os.getpid()
        return conn

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Values of the keys that are present."""
        keys = list(dict.fromkeys(keys))
        found = {k: self._memory[k] for k in keys if k in self._memory}
        missing = [k for k in keys if k not in found]
        if self.path is None or not missing:
            return found
        conn = self._connect()
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            rows = conn.execute(f"SELECT key, value FROM costs WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            for key, value in rows:
                found[key] = self._memory[key] = json.loads(value)
        return found

    def put_many(self, items: dict[str, Any]) -> None:
        """Store values (one transaction)."""
        if not items:
            return
        self._memory.update(items)
        if self.path is None:
            return
        conn = self._connect()
        payload = [(k, json.dumps(v, sort_keys=True)) for k, v in items.items()]
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO costs (key, value) VALUES (?, ?)", payload)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def check(self) -> list[str]:
        """Problems of a persistent cache (empty: sound): SQLite's own integrity check, then every value
        must be a JSON object."""
        if self.path is None:
            return []
        conn = self._connect()
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
        for key, value in conn.execute("SELECT key, value FROM costs"):
            try:
                ok = isinstance(json.loads(value), dict)
            except json.JSONDecodeError:
                ok = False
            if not ok:
                problems.append(f"entry {key[:16]}: expected a JSON object, got {value[:40]!r}")
        return problems

    def __len__(self) -> int:
        if self.path is None:
            return len(self._memory)
        return int(self._connect().execute("SELECT COUNT(*) FROM costs").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

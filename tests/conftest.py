"""Shared fixtures: every test session gets its own cost cache, so tests never touch ~/.cache."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _session_cost_cache(tmp_path_factory: pytest.TempPathFactory):
    cache_dir = tmp_path_factory.mktemp("cost-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("EENAS_CACHE_DIR", str(cache_dir))
    yield cache_dir
    mp.undo()


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on 127.0.0.1 (a free port) with an empty database; skipped, saying
    how to install it, where PostgreSQL is missing (.ci/test installs it)."""
    from tests.postgres import postgres_bin, postgres_server

    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed: apt-get install -y postgresql")
    with postgres_server() as url:
        yield url

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

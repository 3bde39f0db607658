from __future__ import annotations

import multiprocessing

import pytest

from hwmodel import CacheError, CostCache


def _writer(path: str, worker: int, n: int) -> None:
    cache = CostCache(path)
    for i in range(n):
        cache.put_many({f"w{worker}-{i}": {"worker": worker, "i": i}, "shared": {"v": 1}})
    cache.close()


def test_several_processes_write_at_once(tmp_path):
    path = tmp_path / "costs.sqlite"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w, 60)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = CostCache(path)
    assert len(cache) == 4 * 60 + 1
    got = cache.get_many([f"w{w}-{i}" for w in range(4) for i in range(60)])
    assert all(got[f"w{w}-{i}"] == {"worker": w, "i": i} for w in range(4) for i in range(60))


def test_memory_only_cache_and_missing_keys():
    cache = CostCache(None)
    cache.put_many({"a": {"x": 1}})
    assert cache.get_many(["a", "b"]) == {"a": {"x": 1}}
    assert len(cache) == 1


def test_corrupt_cache_file_is_a_clear_error(tmp_path):
    path = tmp_path / "costs.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheError, match="costs.sqlite"):
        CostCache(path).get_many(["k"])

from __future__ import annotations

import multiprocessing

import pytest

from hwmodel import CacheError, CostCache
from hwmodel.network import LayerResult, NetworkCost, expected_cost
from hwmodel.zigzag_core import LayerCost


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


def _network(energies_pj, latencies, labels):
    layers = [LayerResult(f"l{i}", "conv", i, False, 1, LayerCost(e, lat, 0.0, e, lat, 1.0, "c"))
              for i, (e, lat) in enumerate(zip(energies_pj, latencies))]
    return NetworkCost("sys", labels, layers)


def test_expected_edp_follows_the_reference_definition():
    net = _network([1e12, 2e12, 3e12], [10.0, 20.0, 30.0], ["A", "B", "K"])  # stage energies 1, 2, 3 J
    static = _network([5e12], [50.0], ["K"])
    assert net.cumulative_energy_j == pytest.approx([1.0, 3.0, 6.0])
    assert net.cumulative_latency_cycles == pytest.approx([10.0, 30.0, 60.0])
    assert net.et == pytest.approx([10.0, 90.0, 360.0])
    e = expected_cost(net, static, [0.5, 0.3, 0.2])
    assert e.expected_edp == pytest.approx(0.5 * 10 + 0.3 * 90 + 0.2 * 360)
    assert e.expected_energy_j == pytest.approx(0.5 * 1 + 0.3 * 3 + 0.2 * 6)
    assert e.expected_latency_cycles == pytest.approx(0.5 * 10 + 0.3 * 30 + 0.2 * 60)
    assert e.static_edp == pytest.approx(250.0)
    assert e.reduction_factor == pytest.approx(250.0 / e.expected_edp)
    assert e.exit_overhead == pytest.approx(360.0 / 250.0 - 1)
    with pytest.raises(ValueError, match="sum to 1"):
        expected_cost(net, static, [0.5, 0.5, 0.5])

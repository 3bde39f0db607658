"""Which core instance runs each layer.

Heuristics (fast, the default is ``contiguous``):

- ``contiguous``: backbone layers in order, cut into contiguous chunks of about equal estimated
  compute time, one chunk per compute instance, so consecutive layers mostly share a core and fused
  tiles stream between neighbours (a pipeline across cores). Each cut is placed, within a few layers
  of the balance point, after the layer with the smallest output, so little data crosses cores;
- ``single``: every compute layer on the first allowed instance (no concurrency, no transfers);
- ``round_robin``: compute layers cycle through the instances (maximum spreading);
- ``best_kind``: every compute layer on an instance of the core kind that gives it the lowest EDP
  (what the per-layer engine does; the natural choice for layer-by-layer schedules).

Every heuristic respects the system's per-operator allocation rules: a layer whose core kind is not
allowed on its chunk's instance moves to the least-loaded allowed instance. Exit-branch layers go
with the layer they hang off. Pooling runs on the pooling core, adds on the SIMD core.

:func:`genetic_allocation` searches layer-to-instance maps (seeded with the heuristics, elitist, so it
never returns a worse map than the best heuristic) under a budget of schedules.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from hwmodel.scheduling.platform import POOLING, SIMD, Platform

HEURISTICS = ("contiguous", "single", "round_robin", "best_kind")


@dataclass(frozen=True)
class LayerInfo:
    """What allocation needs to know about a layer."""

    name: str
    op: str
    allowed: tuple[str, ...]  # compute instances allowed to run it (empty for pooling / add)
    estimate: dict[str, float]  # instance -> estimated compute cycles
    edp: dict[str, float]  # instance -> estimated energy x cycles of the whole layer
    anchor: str | None  # for exit-branch layers: the backbone layer the branch hangs off
    out_bits: int = 0  # size of the layer's output


def _fixed(layer: LayerInfo) -> str | None:
    return POOLING if layer.op == "maxpool" else SIMD if layer.op == "add" else None


def heuristic_allocation(strategy: str, layers: list[LayerInfo], platform: Platform) -> dict[str, str]:
    """A layer -> instance map by one of :data:`HEURISTICS`."""
    if strategy not in HEURISTICS:
        raise ValueError(f"allocation: expected one of {list(HEURISTICS)} or a layer -> core map, got {strategy!r}")
    out: dict[str, str] = {}
    load = {i.name: 0.0 for i in platform.compute}
    backbone = [la for la in layers if la.anchor is None and not _fixed(la)]
    instances = [i.name for i in platform.compute]
    if strategy == "contiguous":
        wanted = {la.name: instances[c] for la, c in zip(backbone, _chunks(backbone, len(instances)))}
    elif strategy == "single":
        wanted = {la.name: la.allowed[0] for la in backbone}
    elif strategy == "best_kind":
        wanted = {la.name: min(la.allowed, key=lambda i: (la.edp[i], i)) for la in layers if la.allowed}
    else:
        wanted = {la.name: instances[k % len(instances)] for k, la in enumerate(backbone)}
    for la in layers:
        fixed = _fixed(la)
        if fixed:
            out[la.name] = fixed
            continue
        want = wanted.get(la.name) or (out.get(la.anchor) if la.anchor else None)
        if strategy == "best_kind" and la.allowed:
            want = wanted[la.name]
        if want not in la.allowed:
            want = min(la.allowed, key=lambda i: load[i])
        out[la.name] = want
        load[want] += la.estimate[want]
    return out


def _chunks(backbone: list[LayerInfo], parts: int, window: int = 3) -> list[int]:
    """Chunk index of each backbone layer: balanced estimated time, cuts after small outputs."""
    costs = [min(la.estimate.values()) if la.estimate else 0.0 for la in backbone]
    total = sum(costs) or 1.0
    prefix, acc = [], 0.0
    for c in costs:
        acc += c
        prefix.append(acc)
    cuts: list[int] = []  # cut after these positions
    for k in range(1, min(parts, len(backbone))):
        ideal = next((i for i, p in enumerate(prefix) if p >= total * k / parts), len(backbone) - 1)
        lo = max(cuts[-1] + 1 if cuts else 0, ideal - window)
        hi = min(len(backbone) - 2, ideal + window)
        if lo > hi:
            continue
        cuts.append(min(range(lo, hi + 1), key=lambda j: (backbone[j].out_bits, abs(j - ideal))))
    out, chunk = [], 0
    for i in range(len(backbone)):
        out.append(chunk)
        if chunk < len(cuts) and i == cuts[chunk]:
            chunk += 1
    return out


def check_allocation(mapping: dict[str, str], layers: list[LayerInfo]) -> dict[str, str]:
    """Validate an explicit layer -> instance map (every layer present and allowed)."""
    out: dict[str, str] = {}
    for la in layers:
        fixed = _fixed(la)
        inst = mapping.get(la.name, fixed)
        if fixed and inst != fixed:
            raise ValueError(f"allocation: {la.name} must run on the {fixed} core, got {inst!r}")
        if not fixed and inst not in la.allowed:
            raise ValueError(f"allocation: {la.name} expected one of {list(la.allowed)}, got {inst!r}")
        if inst is None:  # no fixed core and none given: refused just above (None is never allowed)
            raise ValueError(f"allocation: {la.name} has no core")
        out[la.name] = inst
    return out


def genetic_allocation(layers: list[LayerInfo], platform: Platform, fitness: Callable[[dict[str, str]], float], *,
                       generations: int = 8, population: int = 12, seed: int = 0) -> tuple[dict[str, str], float]:
    """Evolve layer -> instance maps minimising ``fitness`` (e.g. a schedule's EDP).

    Seeds: the heuristics; then tournament selection, uniform crossover, per-gene mutation
    (another allowed instance) and chunk-boundary shifts; the two best survive each generation.
    Returns (best map, its fitness). Budget: ``population * (generations + 1)`` schedules at most.
    """
    rng = random.Random(seed)
    genes = [la for la in layers if not _fixed(la)]
    seeds = [heuristic_allocation(s, layers, platform) for s in HEURISTICS]

    def random_map() -> dict[str, str]:
        base = dict(rng.choice(seeds))
        for la in genes:
            if rng.random() < 0.3:
                base[la.name] = rng.choice(la.allowed)
        return base

    cache: dict[tuple[str, ...], float] = {}

    def score(m: dict[str, str]) -> float:
        key = tuple(m[la.name] for la in genes)
        if key not in cache:
            cache[key] = fitness(m)
        return cache[key]

    pool = seeds + [random_map() for _ in range(max(0, population - len(seeds)))]
    for _ in range(generations):
        ranked = sorted(pool, key=score)
        children = ranked[:2]
        while len(children) < population:
            a, b = (min(rng.sample(ranked, min(3, len(ranked))), key=score) for _ in range(2))
            child = {k: (a[k] if rng.random() < 0.5 else b[k]) for k in a}
            for la in genes:
                if rng.random() < 1.0 / max(1, len(genes)):
                    child[la.name] = rng.choice(la.allowed)
            if rng.random() < 0.3 and len(genes) > 1:  # shift a chunk boundary by one layer
                k = rng.randrange(len(genes) - 1)
                if child[genes[k + 1].name] in genes[k].allowed:
                    child[genes[k].name] = child[genes[k + 1].name]
            children.append(child)
        pool = children
    best = min(pool, key=score)
    return best, score(best)

"""Side-by-side latency cross-check of our layer-fused scheduler against the real Stream (issue 16).

    python benchmarks/stream_crosscheck.py                       # every network on both systems
    python benchmarks/stream_crosscheck.py --networks resnet20 --systems edge_tpu_quad

Stream (``stream-dse`` 2.1.1) needs Python >= 3.12 and is never a dependency of the project: the
benchmark creates ``runs/stream-venv`` (git-ignored) from the pyenv 3.12 interpreter, installs
``stream-dse==2.1.1 six`` into it, and runs ``benchmarks/stream/run_stream.py`` there once per
(network, system). Stream reports latency in cycles only, reads ONNX and has no early exits, so the
networks are static (one exit, INT8) networks of our spaces, written as clean ONNX by
``benchmarks/stream_onnx.py`` from their layer graphs. Systems:

- ``tpu_like_quad_core``: Stream's shipped system; our side runs its port
  ``benchmarks/stream/eenas_tpu_like_quad_core/system.yaml``;
- ``edge_tpu_quad``: our reference system; Stream's side runs its port ``benchmarks/stream/edge_tpu_quad.yaml``.

Both sides are layer-fused: ours ``CostModel(system, cache=None).evaluate(graph)`` (default
``ScheduleSettings()``: 16-row tiles, contiguous allocation, depth-first), Stream
``evaluate_mapping`` with its generic mapping generator (its own fused groups, inter-core splits
and intra-core tiling) and OR-Tools GSCIP allocation. Our wall time is measured cold (a fresh cost
model with an empty in-memory cache) and warm (the same network again). Writes
``benchmarks/results/stream_crosscheck.json``; ``benchmarks/render.py`` renders it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import networkx as nx
from _common import RESULTS, write_result
from stream_onnx import write_onnx

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "stream"
RUNS = ROOT / "runs"
VENV = RUNS / "stream-venv"
WORK = RUNS / "stream-crosscheck"
PYTHON312 = Path.home() / ".pyenv" / "versions" / "3.12.1" / "bin" / "python"
STREAM_PACKAGES = ("stream-dse==2.1.1", "six")  # six: imported by zigzag-dse, not declared
TOLERANCE = 0.15  # issue 16's goal: |ours / Stream - 1| <= 15 % on every network

# system -> (what Stream runs, what we run)
SYSTEMS: dict[str, tuple[str, str]] = {
    "tpu_like_quad_core": ("tpu_like_quad_core", str(HERE / "eenas_tpu_like_quad_core" / "system.yaml")),
    "edge_tpu_quad": (str(HERE / "edge_tpu_quad.yaml"), "edge_tpu_quad"),
}
# single-core variants of the two: Stream cannot split a layer across cores there, nor can we
DIAGNOSTIC_SYSTEMS: dict[str, tuple[str, str]] = {
    "tpu_like_single_core": (str(HERE / "tpu_like_single_core.yaml"),
                             str(HERE / "eenas_tpu_like_single_core" / "system.yaml")),
    "edge_tpu_single_core": (str(HERE / "edge_tpu_single.yaml"),
                             str(HERE / "eenas_edge_tpu_single_core" / "system.yaml")),
}
# our schedule under other allocations (same tiles, so no new ZigZag costs): is ours' gap the allocation?
OUR_VARIANTS: dict[str, dict[str, Any]] = {"round_robin": {"allocation": "round_robin"},
                                           "genetic": {"allocation": "genetic"}}


def _mobilenet(width: float, which: str) -> nx.DiGraph:
    from search_spaces import create_space

    if which == "reference":
        space = create_space("mobilenetv2_cifar", width_mult=width, bits_choices=(8,))
        return space.layer_graph(space.baselines()["static"])
    space = create_space("mobilenetv2_cifar", width_mult=width, bits_choices=(8,), kernel_choices=(3, 5, 7),
                         expansion_choices=(3, 4, 6), skippable=True)
    return space.layer_graph(space.static_genotype(space.extreme(which == "largest")))


def _resnet() -> nx.DiGraph:
    from search_spaces import create_space

    space = create_space("resnet_cifar", width_mult=1.0, bits_choices=(8,))
    return space.layer_graph(space.baselines()["static"])


# name -> (description, builder), smallest Stream run first; all static (final exit only), every layer INT8
NETWORKS: dict[str, tuple[str, Callable[[], nx.DiGraph]]] = {
    "resnet20": ("ResNet-20 (resnet_cifar static baseline), width 1.0", _resnet),
    "mbv2_smallest_w025": ("smallest of the searchable reference space (kernels 3/5/7, expansions 3/4/6, "
                           "skippable blocks), width 0.25", lambda: _mobilenet(0.25, "smallest")),
    "mbv2_largest_w025": ("largest of the same space, width 0.25", lambda: _mobilenet(0.25, "largest")),
    "mbv2_reference_w1": ("MobileNetV2 reference backbone (mobilenetv2_cifar static baseline), width 1.0",
                          lambda: _mobilenet(1.0, "reference")),
}


def ensure_stream_venv() -> Path:
    """The 3.12 venv's python, creating the venv and installing Stream into it if missing."""
    python = VENV / "bin" / "python"
    if not python.exists():
        if not PYTHON312.exists():
            raise SystemExit(f"{PYTHON312}: expected the pyenv Python 3.12 interpreter (Stream needs >= 3.12)")
        subprocess.run([str(PYTHON312), "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('stream-dse'))"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != "2.1.1":
        subprocess.run([str(python), "-m", "pip", "install", "-q", *STREAM_PACKAGES], check=True)
    return python


def stream_version(python: Path) -> dict[str, str]:
    """Versions of Stream and what it runs on, in the 3.12 venv."""
    code = ("import importlib.metadata as m, json, platform; print(json.dumps({'python': platform.python_version(), "
            "**{p: m.version(p) for p in ('stream-dse', 'zigzag-dse', 'ortools', 'pydantic', 'xdsl')}}))")
    return json.loads(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout)


def run_stream(python: Path, onnx_path: Path, hardware: str, out: Path, time_limit_s: float,
               timeout_s: float) -> dict[str, Any]:
    """Stream's result for one (network, system): cycles and wall seconds, or the exact error."""
    out.mkdir(parents=True, exist_ok=True)
    job = out / "job.json"
    job.write_text(json.dumps({"onnx": str(onnx_path), "hardware": hardware, "out": str(out),
                               "time_limit_s": time_limit_s}))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(["nice", "-n", "19", str(python), str(HERE / "run_stream.py"), str(job)],
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s", "wall_s": time.perf_counter() - t0}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"worker exited {proc.returncode}: {proc.stderr.strip()[-1500:]}",
                "wall_s": time.perf_counter() - t0}
    result: dict[str, Any] = json.loads(lines[-1])
    result["process_wall_s"] = time.perf_counter() - t0
    return result


def run_ours(graph: nx.DiGraph, system: str) -> dict[str, Any]:
    """Our fused latency (cycles), cold (empty cache) and warm wall seconds, the compute cycles summed over
    cores, the latency under :data:`OUR_VARIANTS` and, again from an empty cache, with ZigZag's mapper
    minimising latency (``latency_mapper``) rather than EDP, as Stream's does (its ``MinimalLatencyStage``)."""
    from hwmodel import CostModel, ZigZagSettings
    from hwmodel.scheduling import ScheduleSettings

    settings = ScheduleSettings()
    t0 = time.perf_counter()
    with CostModel(system, cache=None) as model:
        cost = model.evaluate(graph, settings)
        cold = time.perf_counter() - t0
        t1 = time.perf_counter()
        again = model.evaluate(graph, settings)
        warm = time.perf_counter() - t1
        variants = {name: float(model.evaluate(graph, ScheduleSettings(**kw)).total_latency_cycles)
                    for name, kw in OUR_VARIANTS.items()}
    assert again.total_latency_cycles == cost.total_latency_cycles
    t2 = time.perf_counter()
    with CostModel(system, cache=None, settings=ZigZagSettings(optimize="latency")) as model:
        fastest = model.evaluate(graph, settings)
    return {"cycles": float(cost.total_latency_cycles), "cold_s": cold, "warm_s": warm,
            "energy_pj": float(cost.total_energy_pj), "compute_busy_cycles": _busy(cost),
            "variant_cycles": variants, "latency_mapper": {"cycles": float(fastest.total_latency_cycles),
                                                           "compute_busy_cycles": _busy(fastest),
                                                           "cold_s": time.perf_counter() - t2}}


def _busy(cost: Any) -> float | None:
    """Compute cycles of a fused schedule summed over its cores."""
    ops = cost.schedule.ops if cost.schedule is not None else None
    return None if ops is None else float(sum(op.end - op.start for op in ops if op.kind == "compute"))


def network_facts(graph: nx.DiGraph) -> dict[str, Any]:
    """Layer counts and MACs of a layer graph."""
    from search_spaces import specs

    ops: dict[str, int] = {}
    for spec in specs(graph):
        ops[spec.op] = ops.get(spec.op, 0) + 1
    return {"layers": graph.number_of_nodes(), "ops": ops, "macs": sum(s.macs for s in specs(graph))}


def payload(rows: list[dict[str, Any]], networks: dict[str, Any], time_limit_s: float,
            versions: dict[str, str], planned: list[list[str]]) -> dict[str, Any]:
    """The JSON written after every row (a cut-off run keeps what it measured)."""
    from hwmodel import ZigZagSettings
    from hwmodel.scheduling import ScheduleSettings

    return {
        "tolerance": TOLERANCE,
        "networks": networks,
        "systems": {name: {"stream": hw if "/" not in hw else str(Path(hw).relative_to(ROOT)),
                           "ours": ours if "/" not in ours else str(Path(ours).relative_to(ROOT))}
                    for name, (hw, ours) in {**SYSTEMS, **DIAGNOSTIC_SYSTEMS}.items()
                    if any(r["system"] == name for r in rows)},
        "settings": {
            "ours": {"schedule": asdict(ScheduleSettings()), "cache": None, "variants": OUR_VARIANTS,
                     "zigzag": asdict(ZigZagSettings()), "latency_mapper": asdict(ZigZagSettings(optimize="latency"))},
            "stream": {"api": "stream.api.evaluate_mapping", "mapping": "generic mapping generator (mapping=None)",
                       "backend": "ortools_gscip", "artifacts": False, "time_limit_s": time_limit_s,
                       "versions": versions},
        },
        "planned": planned,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", choices=list(NETWORKS), default=list(NETWORKS))
    parser.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=list(SYSTEMS))
    parser.add_argument("--diagnostic-networks", nargs="*", choices=list(NETWORKS), default=["resnet20"],
                        help="networks also run on the single-core variants")
    parser.add_argument("--diagnostic-systems", nargs="*", choices=list(DIAGNOSTIC_SYSTEMS),
                        default=["tpu_like_single_core"],
                        help="single-core variants to run them on (Stream's capacity tiling of the Edge-TPU-like "
                             "core's 32 KB weight memory takes many minutes per network on 2 cores)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows of an earlier results/stream_crosscheck.json and measure only the others "
                             "(each row records when its run started)")
    parser.add_argument("--remeasure-ours", action="store_true",
                        help="with --resume: measure our side of every kept row again (after a change to our cost "
                             "model; Stream's rows are kept, Stream is not rerun)")
    parser.add_argument("--time-limit-s", type=float, default=300.0,
                        help="Stream's limit per allocation solve (its default, 300 s)")
    parser.add_argument("--stream-timeout-s", type=float, default=1200.0,
                        help="wall limit of one Stream run; past it the row records the timeout")
    args = parser.parse_args(argv)

    previous = RESULTS / "stream_crosscheck.json"
    if args.remeasure_ours:  # Stream is not run: its versions are the kept rows'
        python, versions = None, json.loads(previous.read_text())["settings"]["stream"]["versions"]
    else:
        python = ensure_stream_venv()
        versions = stream_version(python)
    rows: list[dict[str, Any]] = []
    networks: dict[str, Any] = {}
    graphs: dict[str, nx.DiGraph] = {}
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    previous_plan: list[list[str]] | None = None
    if args.resume and previous.is_file():
        old = json.loads(previous.read_text())
        rows = [{**r, "run_started": r.get("run_started", f"{old['machine']['date']}, commit {old['commit'][:8]}")}
                for r in old["rows"]]
        networks = {r["network"]: old["networks"][r["network"]] for r in rows}
        previous_plan = old.get("planned")
    if args.remeasure_ours:
        for row in rows:
            net, (_hw, ours_system) = row["network"], {**SYSTEMS, **DIAGNOSTIC_SYSTEMS}[row["system"]]
            if net not in graphs:
                graphs[net] = NETWORKS[net][1]()
            print(f"{net} on {row['system']}: ours again ...", flush=True)
            row["ours"] = run_ours(graphs[net], ours_system)
            row["ours_remeasured"] = started
            cycles = row["stream"].get("cycles")
            row["ratio"] = row["ours"]["cycles"] / cycles if cycles else None
            row["within_tolerance"] = None if row["ratio"] is None else abs(row["ratio"] - 1.0) <= TOLERANCE
            print(f"  ours {row['ours']['cycles']:.0f} cycles, ratio {row['ratio']}", flush=True)
        write_result("stream_crosscheck", payload(rows, networks, args.time_limit_s, versions,
                                                  previous_plan or []))
        return
    # network by network, the smallest first, its (quick, single-core) diagnostic rows before its main ones
    plan = [(net, system, SYSTEMS[system], False) for system in args.systems for net in args.networks]
    plan += [(net, system, DIAGNOSTIC_SYSTEMS[system], True) for system in args.diagnostic_systems
             for net in args.diagnostic_networks]
    plan.sort(key=lambda row: (list(NETWORKS).index(row[0]), not row[3]))
    planned = [[net, system] for net, system, _spec, _diag in plan]
    for net, system, (stream_hw, ours_system), diagnostic in plan:
        if any(r["network"] == net and r["system"] == system for r in rows):
            continue
        if net not in graphs:
            description, build = NETWORKS[net]
            graphs[net] = build()
            write_onnx(graphs[net], net, WORK / f"{net}.onnx")
            networks[net] = {"description": description, **network_facts(graphs[net])}
        print(f"{net} on {system}: ours ...", flush=True)
        ours = run_ours(graphs[net], ours_system)
        print(f"  ours {ours['cycles']:.0f} cycles, {ours['cold_s']:.1f} s cold; Stream ...", flush=True)
        assert python is not None
        stream = run_stream(python, WORK / f"{net}.onnx", stream_hw, WORK / net / system, args.time_limit_s,
                            args.stream_timeout_s)
        ratio = ours["cycles"] / stream["cycles"] if stream.get("cycles") else None
        print(f"  Stream {stream.get('cycles', stream.get('error'))}, ratio {ratio}", flush=True)
        rows.append({"network": net, "system": system, "diagnostic": diagnostic, "run_started": started,
                     "ours": ours, "stream": stream,
                     "ratio": ratio, "within_tolerance": None if ratio is None else abs(ratio - 1.0) <= TOLERANCE})
        write_result("stream_crosscheck", payload(rows, networks, args.time_limit_s, versions, planned))



if __name__ == "__main__":
    main()

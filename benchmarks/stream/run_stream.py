"""Worker of ``benchmarks/stream_crosscheck.py``: one Stream 2.1.1 evaluation, run by the Python 3.12
virtual environment that has ``stream-dse`` (never imported by the project, which runs on 3.11).

    runs/stream-venv/bin/python benchmarks/stream/run_stream.py JOB.json

JOB.json: ``{"onnx": path, "hardware": "tpu_like_quad_core" | path to a hardware YAML, "out": folder,
"time_limit_s": s, "stage_options": {...}}``. A hardware path is assembled under ``out/hardware``
with its ``cores/`` and Stream's shipped tpu_like, pooling, SIMD and off-chip cores (a local file of the same
name wins).
Prints one JSON line: ``cycles`` (Stream's latency, cycles), ``group_cycles``, ``dispatch_cycles``,
``groups`` (the layers of each fused group),
``cores_per_layer`` (cores each layer is split over), ``wall_s`` (seconds of ``evaluate_mapping``), ``import_s`` and, on
failure, ``error`` (the exception, type and message) instead of the cycles.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

SHIPPED_CORES = ("tpu_like.yaml", "pooling.yaml", "simd.yaml", "offchip.yaml")


def hardware_file(spec: str, out: Path) -> str:
    """A hardware YAML Stream can read: a shipped system by name, or ``spec`` assembled with its cores."""
    import stream

    shipped = Path(stream.__file__).parent / "inputs" / "examples" / "hardware"
    if "/" not in spec:
        return str(shipped / f"{spec}.yaml")
    src = Path(spec)
    dest = out / "hardware"
    (dest / "cores").mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dest / src.name)
    for core in (src.parent / "cores").glob("*.yaml"):
        shutil.copy(core, dest / "cores" / core.name)
    for name in SHIPPED_CORES:
        if not (dest / "cores" / name).exists():
            shutil.copy(shipped / "cores" / name, dest / "cores" / name)
    return str(dest / src.name)


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Evaluate one (network, hardware) layer-fused with Stream's generic mapping generator."""
    logging.basicConfig(level=logging.ERROR)
    t0 = time.perf_counter()
    from stream.api import SolveOptions, evaluate_mapping

    import_s = time.perf_counter() - t0
    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    hardware = hardware_file(job["hardware"], out)
    options = SolveOptions(artifacts=False, time_limit_s=float(job.get("time_limit_s", 300)),
                           stage_options=job.get("stage_options", {}))
    t1 = time.perf_counter()
    try:
        est = evaluate_mapping(hardware, job["onnx"], str(out / "stream"), options=options)
    except Exception as exc:  # noqa: BLE001 -- recorded, not hidden: the benchmark writes it into the JSON
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=6)[-2000:],
                "wall_s": time.perf_counter() - t1, "import_s": import_s}
    wall = time.perf_counter() - t1
    subs = est.context.get("sub_workloads")
    groups = [[n.name for n in w.get_computation_nodes()] for w in subs] if subs else []
    return {"cycles": float(est.cycles), "group_cycles": [float(c) for c in est.group_cycles],
            "dispatch_cycles": float(est.dispatch_cycles), "groups": groups, "cores_per_layer": cores_per_layer(out),
            "wall_s": wall, "import_s": import_s}


def cores_per_layer(out: Path) -> dict[str, int]:
    """How many cores Stream's generated mapping gives each layer (its inter-core split), from the mapping
    YAML it wrote per fused group."""
    import yaml

    found: dict[str, int] = {}
    for path in sorted((out / "stream").glob("group_*/mapping.yaml")):
        for layer in yaml.safe_load(path.read_text()).get("layers", []):
            found[layer["name"]] = max(len(cores) for cores in layer["core_allocation"])
    return found


if __name__ == "__main__":
    print(json.dumps(run(json.loads(Path(sys.argv[1]).read_text()))))

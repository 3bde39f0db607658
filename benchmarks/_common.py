"""Helpers shared by the benchmark scripts: machine description and JSON output."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _source() -> tuple[str, bool]:
    """(commit, whether tracked files differ from it), read when a benchmark starts."""
    git = ["git", "-C", str(RESULTS.parent)]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run([*git, "status", "--porcelain", "--untracked-files=no", "--", "..", ":!results"],
                                capture_output=True, text=True).stdout.strip())
    return commit, dirty


SOURCE = _source()  # (commit, uncommitted changes) when the benchmark started
_LOAD_AT_START = os.getloadavg()[0]  # other work running beside the benchmark inflates its timings


def machine() -> dict[str, Any]:
    """Where a figure was measured."""
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "load_avg_1min_at_start": round(_LOAD_AT_START, 2),
    }


def command() -> str:
    """The command line that runs this benchmark, with its arguments (as it was typed, from the repo root)."""
    return shlex.join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` with the machine description and the command that produced it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    commit, dirty = SOURCE
    data = {"benchmark": name, "command": command(), "commit": commit,
            "uncommitted_changes": dirty, "machine": machine(), **payload}
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def trained_supernet(cfg: Any, space: Any, zoo_name: str | None = None) -> Any:
    """The supernet a study benchmark uses: a zoo entry by name, else ``<run_dir>/supernet.pt``."""
    from nas import api, zoo
    from nas.supernet.training import load_supernet

    if zoo_name:
        return zoo.load_supernet(zoo_name, space)
    checkpoint = api.paths(cfg).checkpoint
    if not checkpoint.is_file():
        raise SystemExit(f"{checkpoint}: expected the trained supernet of configs/fashion_mnist_supernet.yaml "
                         "(python benchmarks/fashion_mnist_supernet.py, nas train --config ... --run-dir ..., "
                         "or --supernet NAME for a zoo supernet)")
    return load_supernet(space, checkpoint)

"""Run the README's two set-up commands on a fresh clone, as a new user would, and time them.

A fresh clone of HEAD in a temporary folder, a fresh virtual environment and an empty cost cache:
``.ci/quickstart`` (install + quickstart) and ``.ci/test`` (install + test suite). Records wall
times, the quickstart's own reported time, its Pareto table and the test summary line.
Usage: python benchmarks/readme_commands.py [--skip-tests]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str, int]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, proc.stdout + proc.stderr, proc.returncode


def main() -> None:
    skip_tests = "--skip-tests" in sys.argv
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        env = {**os.environ, "EENAS_CACHE_DIR": str(Path(tmp) / "cache")}
        env.pop("VIRTUAL_ENV", None)
        wall, out, rc = run(["bash", ".ci/quickstart"], clone, env)
        (Path(tmp) / "quickstart.log").write_text(out)
        if rc:
            print(out[-4000:])
            raise SystemExit(f".ci/quickstart failed with exit code {rc}")
        reported = float(re.search(r"quickstart finished in (\d+) s", out).group(1))
        table = out.split("== Pareto front")[1].split("plot:")[0].split("\n", 1)[1].strip()
        reload = out.split("== export and reload")[1].split("== dashboard")[0].strip()
        result["quickstart"] = {"command": "bash .ci/quickstart", "wall_s_install_and_run": wall,
                                "quickstart_reported_s": reported, "pareto_table": table, "export_and_reload": reload}
        print(f"quickstart: {wall:.0f} s in all, {reported:.0f} s reported by the quickstart", flush=True)
        if not skip_tests:
            wall, out, rc = run(["bash", ".ci/test", "-q", "-p", "no:cacheprovider"], clone, env)
            summary = [line for line in out.strip().splitlines() if " passed" in line or " failed" in line]
            result["tests"] = {"command": "bash .ci/test", "wall_s_install_and_run": wall, "exit_code": rc,
                               "summary": summary[-1] if summary else out[-2000:],
                               "failed": [line for line in out.splitlines() if line.startswith(("FAILED", "ERROR"))]}
            print(f"tests: {wall:.0f} s, exit code {rc}: {result['tests']['summary']}", flush=True)
    write_result("readme_commands", result)


if __name__ == "__main__":
    main()

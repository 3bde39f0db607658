"""The installed wheel: built from a copy of the packages, installed into a fresh virtual environment
and run from an unrelated folder, so that only what the wheel holds (code, accelerator files, configs,
zoo, space specs) can be found.

Nothing is downloaded: the wheel is built without build isolation, installed with ``--no-deps``, and
the new environment sees the running interpreter's site-packages (torch, ZigZag, Optuna, ...) through
a ``.pth`` file. A ``.pth`` line only appends a folder to ``sys.path``; the ``.pth`` files inside it
(an editable install of the source tree among them) are not run, and a test checks that every
package comes from the new environment.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("nas", "hwmodel", "search_spaces", "accelerators", "configs")
SHIPPED_SUFFIXES = (".py", ".yaml", ".md", ".json", ".pt")  # what the wheel must hold of the packages' folders
# the shipped quickstart config, shrunk on the command line to one training step, two trials and the
# cheapest mapper search: the whole pipeline in seconds
TINY_QUICKSTART = ("data.n_train=64", "data.n_val=32", "data.n_test=32", "train.epochs=1", "train.batch_size=64",
                   "space.options.bits_choices=[8]", "space.options.kernel_choices=[3]",
                   "space.options.expansion_choices=[6]", "space.options.exit_points=[3]", "search.n_trials=2",
                   "search.population_size=2", "search.bn_recalibration_samples=32", "search.trial_plots=false",
                   "cost.workers=1", "cost.zigzag.lpf_limit=1", "cost.zigzag.spatial_mappings=1",
                   # one training step makes no network that meets the exit constraints: off, so there is a front
                   "constraints.final_exit_ratio_max=null", "constraints.exit_overhead_max=null")


@dataclass(frozen=True)
class Installed:
    """A virtual environment holding the wheel, and a folder outside the source tree to run it from."""

    wheel: Path
    venv: Path
    elsewhere: Path

    def bin(self, name: str) -> Path:
        return self.venv / ("Scripts" if os.name == "nt" else "bin") / name

    def run(self, *argv: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``argv`` (a program of the environment first) from ``elsewhere``, without PYTHONPATH."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "EENAS_ACCELERATORS")}
        return subprocess.run([str(self.bin(str(argv[0]))), *map(str, argv[1:])], cwd=self.elsewhere, env=env,
                              capture_output=True, text=True, timeout=timeout)


def _check(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, (f"{' '.join(out.args)}: exit code {out.returncode}\n"
                                 f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out.stdout


def _host_site_dirs() -> list[str]:
    """The running interpreter's site-packages folders (where the project's dependencies are)."""
    dirs = [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return list(dict.fromkeys(d for d in dirs if Path(d).is_dir()))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    pytest.importorskip("setuptools", reason="building the wheel without build isolation needs setuptools")
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"  # a copy, so the build leaves no build/ or *.egg-info in the checkout
    for name in PACKAGES:
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    _check(subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "--quiet", "-w", str(root / "dist"), str(source)], capture_output=True, text=True,
                          timeout=300))
    (wheel,) = (root / "dist").glob("eenas-*.whl")
    venv = root / "venv"
    _check(subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], capture_output=True, text=True,
                          timeout=120))
    env = Installed(wheel, venv, root / "elsewhere")
    env.elsewhere.mkdir()
    # install before the .pth exists: pip must not see (nor touch) the host's own eenas
    _check(subprocess.run([sys.executable, "-m", "pip", "--python", str(env.bin("python")), "install", "--no-deps",
                           "--no-index", "--quiet", str(wheel)], capture_output=True, text=True, timeout=300))
    purelib = _check(env.run("python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")).strip()
    (Path(purelib) / "eenas_test_host_packages.pth").write_text("\n".join(_host_site_dirs()) + "\n")
    return env


def test_wheel_holds_every_module_and_data_file(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as whl:
        names = set(whl.namelist())
    expected = {p.relative_to(REPO).as_posix() for name in PACKAGES for p in (REPO / name).rglob("*")
                if p.is_file() and p.suffix in SHIPPED_SUFFIXES and "__pycache__" not in p.parts}
    assert {"accelerators/edge_tpu_quad/system.yaml", "accelerators/cores/edge_tpu_core.yaml",
            "accelerators/README.md", "configs/quickstart.yaml", "search_spaces/specs/mobilenetv2_cifar.yaml",
            "nas/zoo/fmnist_mbv2_w025.pt", "nas/zoo/fmnist_mbv2_w025.json"} <= expected
    assert sorted(expected - names) == []
    assert {n.split("/")[0] for n in names} - {"eenas-0.1.0.dist-info"} == set(PACKAGES)


def test_every_package_and_data_folder_comes_from_the_new_environment(installed: Installed) -> None:
    out = _check(installed.run("python", "-c", "; ".join([
        "import accelerators, configs, hwmodel, nas, search_spaces, torch",
        "from hwmodel import accelerators_dir",
        "from nas.config import CONFIGS_DIR",
        "print(*(m.__file__ for m in (accelerators, configs, hwmodel, nas, search_spaces)), accelerators_dir(), "
        "CONFIGS_DIR, sep='\\n')"])))
    paths = [Path(line).resolve() for line in out.splitlines()]
    assert len(paths) == 7
    venv = installed.venv.resolve()
    for path in paths:
        assert path.is_relative_to(venv), f"{path} is not inside the new environment {venv}"
    assert (paths[5] / "edge_tpu_quad" / "system.yaml").is_file() and (paths[6] / "quickstart.yaml").is_file()


def test_accelerators_lists_and_validates_the_shipped_systems(installed: Installed) -> None:
    shipped = sorted(p.parent.name for p in (REPO / "accelerators").glob("*/system.yaml"))
    lines = _check(installed.run("nas", "accelerators")).splitlines()
    assert sorted(line.split()[0] for line in lines if line.strip()) == shipped
    out = _check(installed.run("nas", "accelerators", "--validate", "edge_tpu_quad"))
    first = out.splitlines()[0]
    assert first.endswith(": valid"), out
    assert Path(first.removesuffix(": valid")).resolve().is_relative_to(installed.venv.resolve())
    assert "MAC/cycle" in out
    bad = installed.run("nas", "accelerators", "--validate", "no_such_system")
    assert bad.returncode != 0 and "edge_tpu_quad" in bad.stderr  # the error offers the shipped names


@pytest.mark.slow  # about 60 s in a fresh interpreter; tests/nas/test_quickstart.py runs the quickstart in process
def test_tiny_quickstart_runs_from_the_installed_config(installed: Installed) -> None:
    run_dir = installed.elsewhere / "run"
    args = [arg for pair in TINY_QUICKSTART for arg in ("--set", pair)]
    out = _check(installed.run("nas", "quickstart", "--synthetic", "--run-dir", run_dir, *args, timeout=600))
    assert "exported trial" in out and "quickstart finished" in out, out
    assert (run_dir / "study.db").is_file() and (run_dir / "pareto.png").is_file()
    assert [p.name for p in (run_dir / "exports").iterdir() if p.name.startswith("trial_")], out

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest
from optuna.trial import TrialState

from nas.cli import main


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True, timeout=timeout)


def test_help_for_every_command(capsys):
    out = run_cli("--help")  # `python -m nas` once; then each command in process (a fresh interpreter costs seconds)
    assert out.returncode == 0 and "usage: nas" in out.stdout
    for cmd in ("quickstart", "run", "train", "search", "report", "export", "modes", "dashboard", "warm-cache",
                "accelerators"):
        with pytest.raises(SystemExit) as exit_:
            main([cmd, "--help"])
        assert exit_.value.code == 0 and f"usage: nas {cmd}" in capsys.readouterr().out


def test_accelerators_lists_the_shipped_systems(capsys):
    assert main(["accelerators"]) == 0
    out = capsys.readouterr().out
    assert "edge_tpu_quad" in out and "edge_tpu_single" in out and "4 x edge_tpu" in out


def test_bad_config_is_one_line_naming_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochz: 3\n")
    out = run_cli("train", "--config", str(bad))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert str(bad) in lines[0] and "train.epochz" in lines[0]
    assert "Traceback" not in out.stderr


def test_bad_accelerator_file_is_one_line(tmp_path):
    sys_file = tmp_path / "system.yaml"
    sys_file.write_text("name: x\ncompute_cores: []\n")
    out = run_cli("accelerators", "--validate", str(sys_file))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert str(sys_file) in out.stderr


def test_report_and_export_commands_on_a_run(tiny_run, capsys, tmp_path):
    cfg, _supernet, study, _data = tiny_run
    assert main(["report", "--run-dir", cfg.run_dir]) == 0
    assert "E[EDP]" in capsys.readouterr().out
    trial = study.get_trials(states=(TrialState.COMPLETE,))[0].number
    assert main(["export", "--run-dir", cfg.run_dir, "--trial", str(trial), "--out", str(tmp_path / "e")]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["trial"] == trial
    capsys.readouterr()
    modes = json.loads((tmp_path / "e" / "modes.json").read_text())["modes"]
    budget = min(m["expected_energy_j"] for m in modes)
    assert main(["modes", str(tmp_path / "e"), "--alpha", "0.5", "--energy-budget", str(budget)]) == 0
    out = capsys.readouterr().out
    assert "high_accuracy" in out and "decision cost C = 0.5" in out and f"within energy <= {budget} J" in out
    with pytest.raises(SystemExit, match="no operating mode fits"):
        main(["modes", str(tmp_path / "e"), "--energy-budget", str(budget / 2)])


def test_confirm_command_prints_the_confirmed_front(tiny_run, capsys):
    cfg, _supernet, study, _data = tiny_run
    assert main(["confirm", "--run-dir", cfg.run_dir, "--slices", "2", "--images", "256"]) == 0
    out = capsys.readouterr().out
    assert "2 slices of 256 training images (from image 256" in out and "searched - confirmed" in out
    assert "networks stay on the front" in out and "confirmed_front.json" in out
    assert main(["confirm", "--run-dir", cfg.run_dir, "--slices", "9", "--images", "256"]) == 2
    assert "expected a training split of at least 2560 images, got 1024" in capsys.readouterr().err

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_serves_the_study_on_localhost(tiny_run):
    cfg, _supernet, study, _data = tiny_run
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nas", "dashboard", "--run-dir", cfg.run_dir, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, body = time.time() + 240, None  # generous: CI machines may be busy
        while time.time() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as resp:
                    body = json.loads(resp.read())
            except OSError:
                time.sleep(0.5)
        assert body is not None, "dashboard did not answer"
        names = [s["study_name"] for s in body["study_summaries"]]
        assert study.study_name in names
        # a trial's ribbon plot, attached during the search, is served from the run's artifact store
        study_id = study._study_id
        trial = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))[-1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{study_id}?after=0", timeout=10) as resp:
            detail = json.loads(resp.read())
        served = next(t for t in detail["trials"] if t["number"] == trial.number)
        artifact = served["artifacts"][0]
        assert artifact["filename"] == f"ribbon_trial_{trial.number}.png"
        url = f"http://127.0.0.1:{port}/artifacts/{study_id}/{served['trial_id']}/{artifact['artifact_id']}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.read(8) == b"\x89PNG\r\n\x1a\n"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("args", [["export"], ["report", "--run-dir", "/nonexistent/run"]])
def test_missing_inputs_are_clear(args):
    out = run_cli(*args)
    assert out.returncode != 0 and "Traceback" not in out.stderr and out.stderr.strip()


def test_warm_cache_fills_every_layer_a_search_can_meet(tmp_path, monkeypatch):
    import random

    from hwmodel import CostModel
    from nas.config import load_config
    from search_spaces import create_space

    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("EENAS_CACHE_DIR", str(cache_dir))
    cfg = tmp_path / "c.yaml"
    # a small space (one kernel size, 8 bits) keeps the cold ZigZag work short; the rule is the same
    cfg.write_text("space:\n"
                   "  options: {width_mult: 0.25, bits_choices: [8], kernel_choices: [3], exit_points: [2, 6]}\n"
                   "cost: {workers: 1}\n")
    assert main(["warm-cache", "--config", str(cfg)]) == 0
    space = create_space("mobilenetv2_cifar", width_mult=0.25, bits_choices=(8,), kernel_choices=(3,),
                         exit_points=(2, 6))
    settings = load_config(cfg).cost.schedule
    assert settings.mode == "fused"
    with CostModel("edge_tpu_quad", cache=cache_dir / "costs.sqlite") as cm:
        rng = random.Random(0)
        for _ in range(15):
            g = space.sample(rng)
            cm.evaluate(space.layer_graph(g), settings)
            cm.evaluate(space.layer_graph(space.static_genotype(g)), settings)
        assert cm.stats["misses"] == 0 and cm.stats["hits"] > 0


def test_run_dir_beside_config_places_the_run_there(tmp_path):
    from nas.cli import _config, build_parser
    from nas.config import CONFIGS_DIR

    args = build_parser().parse_args(["train", "--config", str(CONFIGS_DIR / "quickstart.yaml"),
                                      "--run-dir", str(tmp_path / "elsewhere"), "--set", "train.epochs=1"])
    cfg = _config(args)
    assert cfg.run_dir == str(tmp_path / "elsewhere") and cfg.train.epochs == 1

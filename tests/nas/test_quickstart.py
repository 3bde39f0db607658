"""The quickstart when no trial is feasible: it says so and exports nothing."""

from __future__ import annotations

import yaml

from nas.quickstart import quickstart
from tests.test_packaging import TINY_QUICKSTART

TINY = {key: yaml.safe_load(value) for key, value in (pair.split("=", 1) for pair in TINY_QUICKSTART)}


def test_no_feasible_trial_exports_nothing_and_says_so(tmp_path, capsys):
    # also with the other constraints off  # no network costs a billionth of its static one
    impossible = {"constraints.normalized_edp_max": 1e-9}
    result = quickstart(overrides={"run_dir": str(tmp_path / "run"), **TINY, **impossible}, progress=False)
    out = capsys.readouterr().out
    assert result["trial"] is None and result["export"] is None
    assert "No trial met the exit-overhead constraints" in out and "normalized_edp_max <= 1e-09" in out
    assert "exported trial" not in out and not (tmp_path / "run" / "exports").exists()


def test_nas_run_wires_the_whole_pipeline_once_and_exports_the_chosen_trial(tmp_path, capsys):
    from nas.cli import main

    args = [arg for pair in TINY_QUICKSTART for arg in ("--set", pair)]
    assert main(["run", "--config", "configs/quickstart.yaml", "--set", f"run_dir={tmp_path / 'run'}", *args]) == 0
    out = capsys.readouterr().out
    exported = out.split("exported: ", 1)[1].strip()
    assert (tmp_path / "run" / "pareto.json").is_file() and (tmp_path / "run" / "supernet.pt").is_file()
    assert exported.startswith(str(tmp_path / "run" / "exports")) and (tmp_path / "run" / "exports").is_dir()


def test_run_announces_each_step_with_what_the_earlier_ones_made(tmp_path):
    from nas import api
    from nas.config import load_config

    seen = []

    def record(step, out):
        seen.append((step, out.splits is not None, out.supernet is not None, out.study is not None,
                     out.report_table is not None))

    cfg = load_config("configs/quickstart.yaml", {"run_dir": str(tmp_path / "run"), **TINY})
    out = api.run(cfg, progress=False, before_step=record)
    assert [s[0] for s in seen] == list(api.STEPS)
    assert seen == [("data", False, False, False, False), ("train", True, False, False, False),
                    ("search", True, True, False, False), ("report", True, True, True, False),
                    ("export", True, True, True, True)]
    assert out.export is not None and out.export.is_dir()

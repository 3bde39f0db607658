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

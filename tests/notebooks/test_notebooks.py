"""Every notebook in notebooks/ runs top to bottom (a fresh kernel, its own run folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.mark.slow  # a fresh kernel and the whole pipeline: about a minute (pytest -m slow)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("EENAS_RUN_DIR", str(tmp_path / "run"))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "exported trial_" in text and "validation accuracy" in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "the Pareto plot was not displayed"
    assert (tmp_path / "run" / "study.db").exists()
    assert os.environ["EENAS_RUN_DIR"] == str(tmp_path / "run")


def test_there_is_a_notebook():
    assert NOTEBOOKS

"""BENCHMARKS.md and the README's figures block are exactly what benchmarks/render.py writes from the JSON."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _render():
    """benchmarks/render.py as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("render", ROOT / "benchmarks" / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    return render


def test_documents_equal_what_render_writes():
    render = _render()
    documents = render.documents()
    assert set(documents) == {ROOT / "BENCHMARKS.md", ROOT / "README.md"}
    for path, text in documents.items():
        assert path.read_text() == text, f"{path.name}: stale; run python benchmarks/render.py"


def test_every_figure_is_drawn_from_the_json_alone(tmp_path):
    import json
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import figures
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    results = {name: json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())
               for name in figures.FIGURES}
    drawn = figures.draw_all(results, tmp_path)
    assert len(drawn) == 7 + 3 * ("schedules" in results["scheduling"])
    assert all(p.parent == tmp_path and p.stat().st_size > 10_000 for p in drawn)
    shown = {line.split("](benchmarks/results/", 1)[1].split(")", 1)[0]
             for line in (ROOT / "BENCHMARKS.md").read_text().splitlines() if "](benchmarks/results/" in line}
    assert {p.name for p in drawn} <= shown  # each drawn figure is one the documents show


def test_a_section_says_when_it_was_scored_with_an_earlier_zoo_supernet():
    import subprocess

    import pytest

    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", "33e5c73"], capture_output=True).returncode:
        pytest.skip("needs the repository's history (commit 33e5c73 published stage 5 to the zoo)")
    render = _render()
    then = {"benchmark": "reference_studies", "commit": "33e5c73"}
    assert "its first 5 recipe stages, sha256 dc67b2969468" in render.zoo_note(then)
    assert render.zoo_note({**then, "benchmark": "hwmodel_speed"}) == ""  # scores no network
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert render.zoo_note({**then, "commit": head}) == "" or render.zoo_record() != render.zoo_record(head)


def test_a_tried_stage_is_compared_with_the_stage_it_started_from():
    render = _render()

    def rows(acc: float) -> list[dict]:
        return [{"subnet": s, "bits": b, "final_exit_accuracy": acc} for s in ("largest", "reference", "smallest")
                for b in ("W8A8", "W4A4")]

    tried = {"config": "c.yaml", "base": "s9", "train_log": [{"seconds": 3600.0}], "rows": rows(0.91)}
    data = {"stages": {"s9": rows(0.90), "s11": rows(0.95)}, "tried": {"s10": tried}}
    table = [line for line in render.tried_table(data) if line.startswith("| `s10`")]
    assert len(table) == 3 and all("| `s9` | 1 | 1.00 h |" in line and "91.00 % (+1.00)" in line for line in table)
    del data["tried"]["s10"]["base"]  # results written before tried stages named their start: the last stage
    assert all("91.00 % (-4.00)" in line for line in render.tried_table(data) if line.startswith("| `s10`"))
    data["tried"]["s12"] = {**tried, "base": "s10", "rows": rows(0.925)}  # tried from a tried stage
    assert all("92.50 % (+1.50)" in line for line in render.tried_table(data) if line.startswith("| `s12`"))


def test_a_section_says_when_it_re_estimated_batch_norm_the_older_way():
    import subprocess

    import pytest

    render = _render()
    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", render.LAYER_BY_LAYER_COMMIT],
                      capture_output=True).returncode:
        pytest.skip(f"needs the repository's history (commit {render.LAYER_BY_LAYER_COMMIT})")
    older = {"benchmark": "reference_studies", "commit": "9c14525"}  # the commit before layer-by-layer batch norm
    assert "older way (training mode, batches of 250)" in render.reestimation_note(older)
    assert render.reestimation_note({**older, "commit": render.LAYER_BY_LAYER_COMMIT}) == ""
    assert render.reestimation_note({**older, "benchmark": "hwmodel_speed"}) == ""  # re-estimates nothing
    # the stage table marks the stages re-estimated the older way, and only those
    rows = [{"subnet": s, "bits": b, "final_exit_accuracy": 0.9} for s in ("largest", "reference", "smallest")
            for b in ("W8A8", "W4A4")]
    data = {"stages": {"s1": rows, "s2": rows}, "bn_reestimation": {"s1": "training mode, batches of 250",
                                                                     "s2": "layer by layer"}}
    table = render.stage_table(data, {})
    assert any(line.startswith("| `s1` \\*") for line in table) and any(line.startswith("| `s2` |") for line in table)
    assert any(line.startswith("\\* Batch norm re-estimated the older way") for line in table)

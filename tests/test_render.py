"""BENCHMARKS.md and the README's figures block are exactly what benchmarks/render.py writes from the JSON."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_documents_equal_what_render_writes():
    spec = importlib.util.spec_from_file_location("render", ROOT / "benchmarks" / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
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

"""Crash-safe writes: temporaries of dead writers removed, an older folder never lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nas.files import process_alive, remove_stale_temporaries, replace_folder, temporary_for


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_the_temporaries_of_dead_writers_are_removed(tmp_path: Path) -> None:
    target, dead = tmp_path / "supernet.pt", dead_pid()
    assert not process_alive(dead) and process_alive(os.getpid())
    (tmp_path / f".supernet.pt.tmp{dead}").write_bytes(b"torn")
    (tmp_path / f".supernet.pt.tmp{os.getppid()}").write_bytes(b"a live writer's")
    (tmp_path / f".other.pt.tmp{dead}").write_bytes(b"another file's")
    assert remove_stale_temporaries(target) == [tmp_path / f".supernet.pt.tmp{dead}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".supernet.pt.tmp{os.getppid()}",
                                                                 f".other.pt.tmp{dead}"])
    assert temporary_for(target).name == f".supernet.pt.tmp{os.getpid()}"


def test_a_folder_moved_aside_by_a_dead_writer_is_put_back(tmp_path: Path) -> None:
    out, dead = tmp_path / "export", dead_pid()
    old = tmp_path / f".export.old{dead}"  # killed between moving the old export aside and renaming in
    old.mkdir()
    (old / "weights.pt").write_text("old")
    (tmp_path / f".export.tmp{dead}").mkdir()
    remove_stale_temporaries(out)
    assert (out / "weights.pt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_replace_folder_swaps_a_finished_folder_in(tmp_path: Path) -> None:
    out = tmp_path / "export"
    for content in ("first", "second"):
        tmp = temporary_for(out)
        tmp.mkdir()
        (tmp / "weights.pt").write_text(content)
        replace_folder(tmp, out)
        assert (out / "weights.pt").read_text() == content
        assert [p.name for p in tmp_path.iterdir()] == ["export"]

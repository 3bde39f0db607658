"""Crash-safe writes: a file or folder is written under a temporary name, then renamed into place.

A temporary is the target's hidden sibling named after the writing process (``.NAME.tmpPID``), so
it never looks like a finished result, and a later writer removes the ones whose process died
(``kill -9`` mid-write). A folder replacing an older one moves the older aside first
(``.NAME.oldPID``); if the writer dies between the two renames, the next writer puts it back.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def temporary_for(path: Path) -> Path:
    """This process's temporary for ``path``."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporaries of ``path`` left by dead processes (or by this one); restore an older
    folder moved aside by a writer that died before renaming its new one in. Returns what it removed."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(tmp|old)(\d+)")
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    for sibling in path.parent.iterdir():
        match = pattern.fullmatch(sibling.name)
        if match is None or (int(match[2]) != os.getpid() and process_alive(int(match[2]))):
            continue
        if match[1] == "old" and not path.exists():
            os.replace(sibling, path)  # the writer died between moving the old folder aside and renaming in
            continue
        _remove(sibling)
        removed.append(sibling)
    return removed


def replace_folder(tmp: Path, out: Path) -> None:
    """Rename the finished folder ``tmp`` to ``out``; an older ``out`` is replaced, never half-deleted."""
    old = out.with_name(f".{out.name}.old{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    if old.exists():
        _remove(old)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary sibling, then rename it over ``path``: a reader never meets a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = temporary_for(path)
    tmp.write_text(text)
    os.replace(tmp, path)

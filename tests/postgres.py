"""A throwaway PostgreSQL server for tests: ``initdb`` into a temporary folder, started on 127.0.0.1
on a free port with trust authentication, stopped (and its folder removed) afterwards."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def postgres_bin() -> Path | None:
    """The folder holding initdb and pg_ctl (PATH first, then Debian's /usr/lib/postgresql/*/bin)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres() -> dict:
    """PostgreSQL refuses to run as root: drop to the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return {}
    import pwd

    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid}


@contextmanager
def postgres_server(database: str = "eenas") -> Iterator[str]:
    """Yield the storage URL of a fresh database on a private server, in the form the README documents."""
    bindir = postgres_bin()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL is not installed (apt-get install -y postgresql)")
    root = Path(tempfile.mkdtemp(prefix="eenas-pg-"))
    drop = _as_postgres()
    if drop:
        os.chown(root, drop["user"], drop["group"])
    data, port = root / "data", _free_port()
    run = {"check": True, "capture_output": True, "text": True, **drop}
    try:
        subprocess.run([bindir / "initdb", "-D", data, "-U", "eenas", "--auth=trust", "-E", "UTF8", "--no-sync"],
                       **run)
        subprocess.run([bindir / "pg_ctl", "-D", data, "-l", root / "server.log", "-w", "-t", "60", "-o",
                        f"-h 127.0.0.1 -p {port} -k {root} -F -c max_connections=100", "start"], **run)
        try:
            subprocess.run([bindir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "eenas", database], **run)
            # the documented form (nas.study.storage.normalise_url)
            yield f"postgresql://eenas@127.0.0.1:{port}/{database}"
        finally:
            subprocess.run([bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], **{**run, "check": False})
    except subprocess.CalledProcessError as exc:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        raise RuntimeError(f"{exc.cmd[0]} failed: {exc.stderr}\n{log}") from None
    finally:
        shutil.rmtree(root, ignore_errors=True)

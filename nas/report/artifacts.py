"""Files attached to a study in its run's artifact store (optuna-dashboard lists them).

Optuna attaches files only to running trials, so finished work (exports, reports) goes on the
study, under a name that says what it belongs to (``trial_12-weights.pt``, ``report-pareto.png``).
A file whose content was already uploaded under the same name is not uploaded again.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact


def run_artifact_store(run_dir: str | Path) -> FileSystemArtifactStore:
    """The artifact store of a run folder (``<run_dir>/artifacts``, created)."""
    root = Path(run_dir) / "artifacts"
    root.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(root))


def attach_to_study(study: optuna.Study, files: Iterable[Path], prefix: str) -> list[str]:
    """Upload ``files`` to the study as ``<prefix>-<name>``; returns the new artifact ids (none
    when the study has no run folder, or for files already uploaded with the same content)."""
    run_dir = study.user_attrs.get("run_dir")
    if not run_dir:
        return []
    store = run_artifact_store(run_dir)
    uploaded = dict(study.user_attrs.get("uploaded_artifacts", {}))
    ids = []
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for f in sorted(Path(p) for p in files):
            name = f"{prefix}-{f.name}"
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
            if uploaded.get(name) == digest:
                continue
            named = Path(tmp) / name
            shutil.copyfile(f, named)
            ids.append(upload_artifact(artifact_store=store, file_path=str(named), study_or_trial=study))
            uploaded[name] = digest
    study.set_user_attr("uploaded_artifacts", uploaded)
    return ids

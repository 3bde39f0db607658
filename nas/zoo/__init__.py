"""The model zoo: pretrained supernets shipped with the package (Once-for-All style).

Each entry is two files in this folder: ``<name>.pt`` (weights only: state dict, space, version;
no optimiser) and ``<name>.json`` (:class:`ZooEntry`: the recipe it was trained with, the commit,
its accuracy table, the file's sha256). :func:`load_supernet` checks the hash and the space before
it builds anything, and loads with ``weights_only=True``.

    supernet = nas.zoo.load_supernet("fmnist_mbv2_w025")     # Supernet, ready to search
    cfg = nas.zoo.config("fmnist_mbv2_w025")                 # the RunConfig it was trained with
    study = nas.search(cfg, supernet)                        # or: nas search --supernet NAME
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.supernet.training import CheckpointError

if TYPE_CHECKING:
    from nas.config import RunConfig
    from nas.data import Splits
    from search_spaces import Genotype, SearchSpace, Supernet

ZOO_DIR = Path(__file__).resolve().parent
MAX_FILE_BYTES = 20 * 1024 * 1024


class ZooError(CheckpointError):
    """A zoo entry that is unknown, corrupt, or for another space (names the entry and the file)."""


@dataclass(frozen=True)
class ZooEntry:
    """The record of one pretrained supernet (``<name>.json``).

    ``config``: the run configuration's data, space and train sections; ``accuracy``: rows of the
    test-split accuracy table (subnet, bits, final and per-exit accuracy); ``check``: the figure a
    test reproduces (a subnet's accuracy on the first ``test_images`` test images).
    """

    name: str
    description: str
    file: str
    sha256: str
    bytes: int
    space: dict[str, Any]
    config: dict[str, Any]
    commit: str
    training: dict[str, Any] = field(default_factory=dict)
    accuracy: list[dict[str, Any]] = field(default_factory=list)
    check: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def names(zoo_dir: Path | None = None) -> list[str]:
    """Names of the shipped supernets."""
    zoo_dir = zoo_dir or ZOO_DIR
    return sorted(p.stem for p in zoo_dir.glob("*.json"))


def entry(name: str, zoo_dir: Path | None = None) -> ZooEntry:
    """The record of a zoo supernet (ZooError naming the known ones if there is none)."""
    zoo_dir = zoo_dir or ZOO_DIR
    path = zoo_dir / f"{name}.json"
    if not path.is_file():
        raise ZooError(f"zoo: {name!r}: expected one of {names(zoo_dir)} (files in {zoo_dir})")
    try:
        data = json.loads(path.read_text())
        record = ZooEntry(**data)
    except (ValueError, TypeError) as exc:
        raise ZooError(f"{path}: expected a zoo record with the fields of ZooEntry ({exc})") from None
    return record


def config(name: str, overrides: dict[str, Any] | None = None, zoo_dir: Path | None = None) -> RunConfig:
    """The run configuration a zoo supernet was trained with, run folder ``runs/<name>``;
    ``overrides`` maps dotted keys to values (``{"search.n_trials": 50}``)."""
    from nas.config import config_from_dict

    zoo_dir = zoo_dir or ZOO_DIR
    record = entry(name, zoo_dir)
    return config_from_dict({"run_dir": f"runs/{name}", **record.config}, f"zoo:{name}", overrides)


def load_supernet(name: str, space: SearchSpace | None = None, zoo_dir: Path | None = None) -> Supernet:
    """A zoo supernet, after checking the sha256 of its file against its record and its space
    against the record's (and against ``space`` when given)."""
    from nas.supernet.training import load_checkpoint
    from search_spaces.registry import same_space, space_from_config

    zoo_dir = zoo_dir or ZOO_DIR
    record = entry(name, zoo_dir)
    path = zoo_dir / record.file
    if not path.is_file():
        raise ZooError(f"zoo: {name}: {path}: expected the weights file of this entry; it does not exist")
    digest = file_sha256(path)
    if digest != record.sha256:
        raise ZooError(f"zoo: {name}: {path}: sha256: expected {record.sha256}, got {digest} (the file is corrupt "
                       "or was replaced; restore it from the repository)")
    if space is not None and not same_space(space.config, record.space):
        raise ZooError(f"zoo: {name}: space: this supernet was trained for {record.space}, the run asks for "
                       f"{space.config} (use the entry's config: nas.zoo.config({name!r}))")
    ckpt = load_checkpoint(path)  # weights_only=True
    if not same_space(ckpt["space"], record.space):
        raise ZooError(f"zoo: {name}: {path}: space: expected {record.space} (the record's), the file holds "
                       f"{ckpt['space']}")
    space = space or space_from_config(record.space)
    net = space.build_supernet()
    net.load_state_dict(ckpt["state_dict"])
    return net.eval()


def check_genotype(space: SearchSpace, subnet: str) -> Genotype:
    """The architecture a record's check names: ``reference`` (every exit mounted), ``largest`` or ``smallest``."""
    if subnet == "reference":
        return space.uniform(exits=space.exit_points)
    return space.extreme(subnet == "largest")


def measure_check(supernet: Supernet, space: SearchSpace, splits: Splits, check: dict[str, Any]) -> float:
    """The final-exit accuracy a record's ``check`` describes (subnet, bits ``WnAn``, the first
    ``test_images`` test images, batch-norm re-estimated on ``bn_recalibration_samples`` training images)."""
    from nas.data import Split
    from nas.study.evaluator import candidate_network
    from nas.supernet.calibrate import exit_outputs, exit_stats
    from nas.supernet.training import at_bits

    genotype = at_bits(check_genotype(space, check["subnet"]), int(check["bits"].split("A")[1]))
    net = candidate_network(supernet, genotype, splits.train.images[: check["bn_recalibration_samples"]])
    n = check["test_images"]
    stats = exit_stats(exit_outputs(net, Split(splits.test.images[:n], splits.test.labels[:n]), 500), 1.01)
    return float(stats.exit_accuracy_all[-1])


def publish(name: str, checkpoint: str | Path, cfg: RunConfig, *, description: str, accuracy: list[dict[str, Any]],
            check: dict[str, Any], training: dict[str, Any] | None = None, zoo_dir: Path | None = None) -> ZooEntry:
    """Write a trained checkpoint into the zoo as ``<name>.pt`` (weights only) and ``<name>.json``."""
    import torch

    from nas.supernet.training import CHECKPOINT_VERSION, atomic_save, load_checkpoint

    zoo_dir = zoo_dir or ZOO_DIR
    ckpt = load_checkpoint(checkpoint)
    weights = zoo_dir / f"{name}.pt"
    atomic_save({"version": CHECKPOINT_VERSION, "state_dict": {k: v.clone() for k, v in ckpt["state_dict"].items()},
                 "epoch": ckpt["epoch"], "step": 0, "space": ckpt["space"]}, weights)
    size = weights.stat().st_size
    if size > MAX_FILE_BYTES:
        weights.unlink()
        raise ZooError(f"zoo: {name}: {weights}: expected at most {MAX_FILE_BYTES} bytes, got {size}")
    commit = subprocess.run(["git", "-C", str(ZOO_DIR), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    recipe = cfg.to_dict()
    record = ZooEntry(name=name, description=description, file=weights.name, sha256=file_sha256(weights), bytes=size,
                      space=ckpt["space"], config={k: recipe[k] for k in ("data", "space", "train")}, commit=commit,
                      training={"epochs": ckpt["epoch"], "torch": torch.__version__, **(training or {})},
                      accuracy=accuracy, check=check)
    (zoo_dir / f"{name}.json").write_text(record.to_json())
    return record

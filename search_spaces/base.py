"""The search-space interface every registered space implements."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, astuple, dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx

from search_spaces.genotype import FLOAT_BITS, Genotype, GenotypeError
from search_spaces.graph import LayerSpec, specs

if TYPE_CHECKING:
    from search_spaces.modules.early_exit import EarlyExitNet, Supernet

Choose = Callable[[str, Sequence[Any]], Any]
"""A chooser: given a parameter name and its options, return one option.

Optuna's ``trial.suggest_categorical`` fits this shape; so does ``lambda n, o: rng.choice(o)``.
"""


@dataclass(frozen=True)
class SpaceOptions:
    """The settings every space has (the contract; a space's own ``Options`` subclass adds its own).

    ``width_mult`` scales every channel count; ``num_classes``, ``in_channels`` and ``input_size``
    (pixels) describe the data; ``bits_choices`` are the bit-widths searched (32 = float); with
    ``per_layer_bits`` False one (weight, activation) pair is chosen for the backbone and one for all
    classifiers; ``branch_depths`` are the FC layers an exit branch may have; ``thresholds`` the
    exit confidences searched.
    """

    width_mult: float = 1.0
    num_classes: int = 10
    in_channels: int = 3
    input_size: int = 32
    bits_choices: tuple[int, ...] = (4, 8)
    per_layer_bits: bool = True
    branch_depths: tuple[int, ...] = (1, 2)
    thresholds: tuple[float, ...] = (0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    # options a later training stage may change from the checkpoint it starts from (``train.init_from``):
    # the parameters they add start from the checkpoint's own
    STAGE_OPTIONS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        if not 0.0 < self.width_mult <= 4.0:
            raise ValueError(f"width_mult: expected a number in (0, 4], got {self.width_mult}")
        bad = [b for b in self.bits_choices if not (2 <= b <= 16 or b == FLOAT_BITS)]
        if not self.bits_choices or bad:
            raise ValueError(f"bits_choices: expected values in 2..16 or 32, got {list(self.bits_choices)}")
        if not set(self.branch_depths) <= {1, 2} or not self.branch_depths:
            raise ValueError(f"branch_depths: expected a subset of [1, 2], got {list(self.branch_depths)}")
        if not self.thresholds or not all(0.0 < t <= 1.0 for t in self.thresholds):
            raise ValueError(f"thresholds: expected values in (0, 1], got {list(self.thresholds)}")


class SearchSpace(ABC):
    """A family of early-exit networks: how to sample them, build them and describe them.

    Subclasses set :attr:`name` and :attr:`Options` (a :class:`SpaceOptions` subclass) and
    implement :meth:`decode`, :meth:`build_supernet` and :meth:`layer_graph`.
    """

    name: ClassVar[str]
    Options: ClassVar[type[SpaceOptions]]

    def __init__(self, options: SpaceOptions | None = None, **kwargs: Any) -> None:
        if options is not None and kwargs:
            raise TypeError("pass either an options object or keyword options, not both")
        self.options: SpaceOptions = options if options is not None else self.Options(**kwargs)

    @property
    def config(self) -> dict[str, Any]:
        """JSON-ready description (name + options) from which :func:`create_space` rebuilds the space."""
        opts = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.options).items()}
        return {"name": self.name, "options": opts}

    @property
    @abstractmethod
    def exit_points(self) -> tuple[int, ...]:
        """The blocks an early exit may mount after (the final exit is always there)."""

    @abstractmethod
    def decode(self, choose: Choose) -> Genotype:
        """Build a genotype by asking ``choose`` for every parameter (define-by-run)."""

    def encode(self, genotype: Genotype) -> dict[str, Any]:
        """The parameters :meth:`decode` asks for, with the values that give ``genotype`` (so a known
        architecture can be enqueued as an Optuna trial); ``decode(encode(g).__getitem__) == g``."""
        self.validate(genotype)
        wanted = self._encoding(genotype)
        params: dict[str, Any] = {}

        def choose(name: str, options: Sequence[Any]) -> Any:
            value = wanted.get(name, list(options)[0])
            if value not in options:
                raise GenotypeError(f"{name}: {value!r} is not one of {list(options)}")
            params[name] = value
            return value

        if self.decode(choose) != genotype:
            raise GenotypeError(f"{self.name}: the genotype cannot be expressed with this space's parameters")
        return params

    @abstractmethod
    def _encoding(self, genotype: Genotype) -> dict[str, Any]:
        """Parameter values for ``genotype`` (parameters not listed take their first option)."""

    def _decode_exits_and_bits(self, choose: Choose, exit_points: Sequence[int], final_block: int,
                               label: Callable[[int], str], backbone: tuple[int, ...]) -> Genotype:
        """Ask ``choose`` for the parameters every space shares (exits, branch depths, bits, threshold,
        in that order) and return the genotype with the space's own ``backbone`` choices."""
        o = self.options
        exits = tuple(p for p in exit_points if choose(f"exit_{label(p)}", (False, True)))
        mounts = [*exit_points, final_block]
        depth_of = {m: int(choose(f"depth_{label(m)}", o.branch_depths)) for m in mounts}
        names = self.backbone_layer_names()
        if o.per_layer_bits:
            wb = tuple(int(choose(f"wbits_{n}", o.bits_choices)) for n in names)
            ab = tuple(int(choose(f"abits_{n}", o.bits_choices)) for n in names)
            ebits = {m: (int(choose(f"wbits_exit_{label(m)}", o.bits_choices)),
                         int(choose(f"abits_exit_{label(m)}", o.bits_choices))) for m in mounts}
        else:
            pw, pa = int(choose("wbits_backbone", o.bits_choices)), int(choose("abits_backbone", o.bits_choices))
            pc = (int(choose("wbits_exits", o.bits_choices)), int(choose("abits_exits", o.bits_choices)))
            wb, ab = (pw,) * len(names), (pa,) * len(names)
            ebits = {m: pc for m in mounts}
        used = [*exits, final_block]
        return Genotype(exits, tuple(depth_of[m] for m in used), wb, ab, tuple(ebits[m][0] for m in used),
                        tuple(ebits[m][1] for m in used), float(choose("threshold", o.thresholds)), backbone)

    def _exit_and_bits_encoding(self, genotype: Genotype, exit_points: Sequence[int], final_block: int,
                                label: Callable[[int], str]) -> dict[str, Any]:
        """The parameters every space shares: exits, branch depths, bits, threshold."""
        out: dict[str, Any] = {"threshold": genotype.threshold}
        for p in exit_points:
            out[f"exit_{label(p)}"] = p in genotype.exits
        for e, m in enumerate([*genotype.exits, final_block]):
            out |= {f"depth_{label(m)}": genotype.branch_depths[e],
                    f"wbits_exit_{label(m)}": genotype.exit_weight_bits[e],
                    f"abits_exit_{label(m)}": genotype.exit_act_bits[e]}
        out |= {"wbits_exits": genotype.exit_weight_bits[-1], "abits_exits": genotype.exit_act_bits[-1],
                "wbits_backbone": genotype.weight_bits[0], "abits_backbone": genotype.act_bits[0]}
        for n, w, a in zip(self.backbone_layer_names(), genotype.weight_bits, genotype.act_bits):
            out |= {f"wbits_{n}": w, f"abits_{n}": a}
        return out

    def parameters(self) -> dict[str, tuple[Any, ...]]:
        """Every parameter :meth:`decode` asks for, with its options (these spaces ask for the same
        parameters whatever the answers)."""
        found: dict[str, tuple[Any, ...]] = {}

        def choose(name: str, options: Sequence[Any]) -> Any:
            found[name] = tuple(options)
            return found[name][0]

        self.decode(choose)
        return found

    def fixed_params(self, fixed: dict[str, Any]) -> dict[str, Any]:
        """Optuna parameters pinned by a ``search.fixed`` mapping, checked against the space.

        Keys: ``backbone: reference`` pins the backbone choices to those of the static baseline (the
        reference backbone); ``bits: B`` pins every weight and activation bit-width to ``B``; any
        other key is a parameter name of :meth:`parameters` pinned to its value. ValueError (naming
        the key and what was expected) for anything else.
        """
        options = self.parameters()
        shared = ("exit_", "depth_", "wbits_", "abits_", "threshold")
        out: dict[str, Any] = {}
        for key, value in fixed.items():
            if key == "backbone":
                if value != "reference":
                    raise ValueError(f"backbone: expected 'reference', got {value!r}")
                ref = self.encode(self.baselines()["static"])
                out |= {n: ref[n] for n in options if not n.startswith(shared)}
            elif key == "bits":
                names = [n for n in options if n.startswith(("wbits_", "abits_"))]
                if names and value not in options[names[0]]:
                    raise ValueError(f"bits: expected one of {list(options[names[0]])}, got {value!r}")
                out |= dict.fromkeys(names, value)
            elif key not in options:
                raise ValueError(f"{key}: not a parameter of {self.name}; expected 'backbone', "
                                 f"'bits' or one of {sorted(options)}")
            elif value not in options[key]:
                raise ValueError(f"{key}: expected one of {list(options[key])}, got {value!r}")
            else:
                out[key] = value
        return out

    def sample(self, rng: random.Random) -> Genotype:
        """A uniformly random genotype."""
        return self.decode(lambda _name, options: rng.choice(list(options)))

    @abstractmethod
    def validate(self, genotype: Genotype) -> None:
        """Raise :class:`~search_spaces.genotype.GenotypeError` if the genotype does not fit this space."""

    @abstractmethod
    def build_supernet(self) -> Supernet:
        """A freshly initialised weight-sharing supernet."""

    def build_network(self, genotype: Genotype) -> EarlyExitNet:
        """A standalone network for ``genotype`` with the modules an extract has (fresh weights: load an
        exported state dict into it)."""
        self.validate(genotype)
        return self.build_supernet().extract(genotype)

    def baselines(self) -> dict[str, Genotype]:
        """Known architectures worth evaluating first (enqueued on a new study), by name. Default: the
        static network (final exit only) at the highest quantised bit-width."""
        return {"static": self.static_genotype(self.extreme(True))}

    def named_baselines(self, names: Sequence[str]) -> dict[str, Genotype]:
        """The baselines called ``names``, in that order; ValueError listing the known ones."""
        available = self.baselines()
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ValueError(f"expected baselines of space {self.name!r} from {sorted(available)}, got {unknown}")
        return {name: available[name] for name in names}

    @abstractmethod
    def extreme(self, largest: bool) -> Genotype:
        """The largest or smallest genotype of the space (bounds of the sandwich rule)."""

    @abstractmethod
    def uniform(self, exits: Sequence[int] = (), depth: int = 1, bits: int = 8, *, threshold: float = 0.9,
                skip: bool = False) -> Genotype:
        """The space's reference backbone with early exits after the blocks ``exits``, ``depth`` FC
        layers in every branch and every layer at ``bits`` (``skip``: skip every skippable block).
        Training's ``reference`` companion and the zoo's accuracy check use it."""

    @abstractmethod
    def layer_graph(self, genotype: Genotype) -> nx.DiGraph:
        """The genotype's layer graph (see :mod:`search_spaces.graph`) with exact MAC counts."""

    @abstractmethod
    def static_genotype(self, genotype: Genotype) -> Genotype:
        """The same backbone and bits with only the final exit: the static baseline."""

    @abstractmethod
    def exit_labels(self, genotype: Genotype) -> list[str]:
        """Label of each exit of ``genotype`` (early exits, then the final one)."""

    @abstractmethod
    def backbone_layer_names(self) -> list[str]:
        """Names of the quantised backbone layers, in the order of ``Genotype.weight_bits``."""

    @abstractmethod
    def covering_genotypes(self) -> list[Genotype]:
        """Genotypes whose layer graphs, together, contain every layer shape of the space."""

    def all_layer_specs(self) -> list[LayerSpec]:
        """Every distinct layer (shape and bits) a genotype of this space can contain.

        Backbone conv layers: every (weight, input, stored-output) bit triple of ``bits_choices``;
        exit-branch FC layers: every (weight, input) pair, outputs at the input precision; max-pooling
        and adds: one precision for everything (pooling keeps its branch's, adds pass theirs through).
        """
        bits = tuple(self.options.bits_choices)
        found: dict[tuple, LayerSpec] = {}
        for genotype in self.covering_genotypes():
            for spec in specs(self.layer_graph(genotype)):
                if spec.op in ("maxpool", "add"):
                    triples: Iterator[tuple[int, int, int]] = ((b, b, b) for b in bits)
                elif spec.branch:
                    triples = ((w, a, a) for w in bits for a in bits)
                else:
                    triples = ((w, a, o) for w in bits for a in bits for o in bits)
                for w, a, o in triples:
                    variant = replace(spec.with_bits(w, a, o), name="", stage=0, branch=False)
                    found.setdefault(astuple(variant), replace(variant, name=spec.name))
        return list(found.values())

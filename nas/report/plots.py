"""Plots of chosen networks: per-exit-stage costs (as in the reference's figures) and the
architecture ribbon (layer-wise optimisation study): per layer along the depth, its bits, MACs,
energy and latency share, with the exits marked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hwmodel import NetworkCost
from hwmodel.plotting import pyplot, save


def plot_exit_costs(networks: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Cumulative ET (E_cum x L_cum, J x cycles) at each exit of each network, with its expected ET
    as a dashed line. ``networks``: trial attributes (exit_labels, et_j_cycles, expected_edp_j_cycles,
    a ``name``)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for i, net in enumerate(networks):
        color = plt.get_cmap("tab10")(i % 10)
        xs = range(len(net["et_j_cycles"]))
        ax.plot(xs, net["et_j_cycles"], "o-", color=color, label=f"{net.get('name', i)}: ET per exit")
        ax.axhline(net["expected_edp_j_cycles"], color=color, ls="--", lw=1,
                   label=f"{net.get('name', i)}: expected ET {net['expected_edp_j_cycles']:.3g}")
        for x, (lbl, et) in enumerate(zip(net["exit_labels"], net["et_j_cycles"])):
            ax.annotate(lbl, (x, et), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
        if "static_edp_j_cycles" in net and i == 0:
            ax.axhline(net["static_edp_j_cycles"], color="grey", ls=":", lw=1, label="static network EDP")
    ax.set_xlabel("exit (stage index)")
    ax.set_ylabel("ET = E_cum x L_cum (J x cycles)")
    ax.set_title("cost per exit stage and expected ET")
    ax.legend(fontsize=7)
    return save(fig, path)


def plot_ribbon(network: NetworkCost, bits: dict[str, str], path: str | Path, title: str = "") -> Path:
    """Architecture ribbon: per layer (depth order), weight / activation bits on top and the share of
    MACs, energy and latency below; vertical lines at the exits."""
    plt = pyplot()
    layers = network.layers
    names = [r.name for r in layers]
    x = range(len(layers))
    total = {"MACs": sum(r.macs for r in layers) or 1, "energy": sum(r.cost.energy_pj for r in layers) or 1,
             "latency": sum(r.cost.latency_cycles for r in layers) or 1}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8, 0.18 * len(layers)), 5.5), dpi=120, sharex=True,
                                      gridspec_kw={"height_ratios": [1, 2]})
    wb, ab = [], []
    for n in names:
        key = n if n in bits else ("exit_" + n.split("_")[1].split(".")[0] if n.startswith("exit_") else None)
        tag = bits.get(key or "", "")
        wb.append(int(tag[1:].split("A")[0]) if tag else float("nan"))
        ab.append(int(tag.split("A")[1]) if tag else float("nan"))
    top.step(x, wb, where="mid", label="weight bits")
    top.step(x, ab, where="mid", label="activation bits", ls="--")
    top.set_ylabel("bits")
    top.legend(fontsize=7, loc="upper right")
    width = 0.27
    series: tuple[tuple[str, list[float]], ...] = (("MACs", [r.macs for r in layers]),
                                                   ("energy", [r.cost.energy_pj for r in layers]),
                                                   ("latency", [r.cost.latency_cycles for r in layers]))
    for k, (label, values) in enumerate(series):
        bottom.bar([i + (k - 1) * width for i in x], [100 * v / total[label] for v in values], width, label=label)
    bottom.set_ylabel("share of the network (%)")
    bottom.legend(fontsize=7, loc="upper right")
    for i, r in enumerate(layers):
        if r.branch and r.name.endswith((".fc1",)):
            for ax in (top, bottom):
                ax.axvline(i, color="red", lw=0.7, ls=":")
            top.annotate(r.name.split(".")[0], (i, 1), fontsize=6, color="red", rotation=90, va="bottom")
    bottom.set_xticks(list(x), names, rotation=90, fontsize=6)
    top.set_title(title or f"architecture ribbon ({network.system}, {network.mode})")
    return save(fig, path)

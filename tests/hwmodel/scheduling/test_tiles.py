from __future__ import annotations

import networkx as nx
import pytest

import search_spaces as ss
from hwmodel.scheduling.tiles import build_tiles
from hwmodel.workload import zigzag_layer


def chain(*specs, edges=None):
    g = nx.DiGraph(exit_labels=["K"], exit_outputs=[specs[-1].name])
    for s in specs:
        g.add_node(s.name, spec=s)
    for a, b in edges or zip([s.name for s in specs], [s.name for s in specs[1:]]):
        g.add_edge(a, b)
    return g


CONV = ss.LayerSpec("c1", "conv", 4, 8, (8, 8), (8, 8), (3, 3), (1, 1), (1, 1))
CONV2 = ss.LayerSpec("c2", "conv", 8, 8, (8, 8), (4, 4), (3, 3), (2, 2), (1, 1))


def test_rows_receptive_field_and_padding():
    tiles = build_tiles(chain(CONV), tile_rows=2)
    assert [(t.row0, t.rows) for t in tiles] == [(0, 2), (2, 2), (4, 2), (6, 2)]
    assert [(t.in_row0, t.in_rows, t.pad_top, t.pad_bottom) for t in tiles] == [
        (0, 3, 1, 0), (1, 4, 0, 0), (3, 4, 0, 0), (5, 3, 0, 1)]
    assert sum(t.macs for t in tiles) == pytest.approx(CONV.macs)


def test_dependencies_follow_stride_and_overlap():
    tiles = build_tiles(chain(CONV, CONV2), tile_rows=2)
    c2 = [t for t in tiles if t.layer == "c2"]
    # c2 rows 0-1 (stride 2, pad 1, 3x3) read c1 rows -1..3 -> 0..3 -> c1 tiles [0:2] and [2:4]
    first = c2[0]
    assert (first.in_row0, first.in_rows, first.pad_top, first.pad_bottom) == (0, 4, 1, 0)
    row_bits = 8 * 8 * 8
    assert sorted((tiles[d.src].row0, d.bits) for d in first.preds) == [(0, 2 * row_bits), (2, 2 * row_bits)]
    for t in c2:
        for d in t.preds:
            assert tiles[d.src].layer == "c1" and d in tiles[d.src].succs


def test_fc_depends_on_every_row_and_adds_on_both_inputs():
    pool = ss.LayerSpec("p", "maxpool", 8, 8, (8, 8), (4, 4), (2, 2), (2, 2))
    fc = ss.LayerSpec("fc", "fc", 128, 10, (1, 1), (1, 1))
    tiles = build_tiles(chain(CONV, pool, fc), tile_rows=1)
    fc_tile = [t for t in tiles if t.layer == "fc"]
    assert len(fc_tile) == 1 and len(fc_tile[0].preds) == 4
    add = ss.LayerSpec("a", "add", 8, 8, (8, 8), (8, 8))
    a2 = ss.LayerSpec("c3", "conv", 8, 8, (8, 8), (8, 8), (1, 1))
    g = chain(CONV, a2, add, edges=[("c1", "c3"), ("c1", "a"), ("c3", "a")])
    tiles = build_tiles(g, tile_rows=4)
    add_tiles = [t for t in tiles if t.layer == "a"]
    assert all(sorted(tiles[d.src].layer for d in t.preds) == ["c1", "c3"] for t in add_tiles)


def test_layers_whose_weights_do_not_fit_stay_whole():
    tiles = build_tiles(chain(CONV, CONV2), tile_rows=1, max_weight_bits=CONV.params * 8)
    assert sum(t.layer == "c1" for t in tiles) == 8 and sum(t.layer == "c2" for t in tiles) == 1


def test_tile_workloads():
    whole = build_tiles(chain(CONV), tile_rows=None)[0]
    assert whole.zigzag() == zigzag_layer(CONV)
    edge = build_tiles(chain(CONV), tile_rows=3)[-1]  # rows 6-7 read input 5..7 + 1 padding row
    zz = edge.zigzag()
    sizes = dict(zip(zz["loop_dims"], zz["loop_sizes"]))
    assert sizes["OY"] == 2 and zz["pr_loop_sizes"][1] == 3 and zz["padding"][1] == [0, 1]
    with pytest.raises(ValueError, match="tile_rows"):
        build_tiles(chain(CONV), tile_rows=0)


@pytest.mark.parametrize("spec", [
    ss.LayerSpec("k3", "conv", 8, 16, (16, 16), (16, 16), (3, 3), (1, 1), (1, 1)),
    ss.LayerSpec("k7dw", "conv", 16, 16, (16, 16), (16, 16), (7, 7), (1, 1), (3, 3), groups=16),
    ss.LayerSpec("k5s2", "conv", 8, 8, (16, 16), (8, 8), (5, 5), (2, 2), (2, 2)),
])
def test_mirror_image_edge_tiles_share_one_zigzag_job(spec):
    """ZigZag gives a tile and its mirror image (padding rows above and below swapped) exactly the same
    cost, so tiles key on their padding in one order; at stride 1 the first and last tile of a layer
    are mirror images and share one shape key and one ZigZag job (strided layers pad unevenly)."""
    from hwmodel import ZigZagSettings, load_system
    from hwmodel.zigzag_core import ZigZagCore

    tiles = build_tiles(chain(spec), tile_rows=spec.out_hw[0] // 2)
    first, last = tiles[0], tiles[-1]
    if spec.stride == (1, 1):
        assert (first.pad_top, first.pad_bottom) == (last.pad_bottom, last.pad_top) != (0, 0)
        assert first.shape_key() == last.shape_key() and first.zigzag() == last.zigzag()
    system = load_system("edge_tpu_quad")
    c = system.compute_cores[0]
    core = ZigZagCore("edge_tpu", system.resolve(c.core), system.resolve(c.mapping), ZigZagSettings(), onchip=True)
    layer = first.zigzag()
    swapped = {**layer, "padding": [layer["padding"][0], layer["padding"][1][::-1]]}
    assert core.cost(layer, "a") == core.cost(swapped, "b")

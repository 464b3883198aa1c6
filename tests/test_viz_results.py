"""Seed-strip figures over finished runs: dots per seed, ablations kept apart, clear errors, stable bytes."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from muva_lib import tables
from muva_lib.viz import results as vr
from muva_lib.viz import save_figure


def _rows() -> pd.DataFrame:
    rows = []
    for seed in (0, 1, 2):
        for method, base in (("muva", 0.12), ("clipreid", 0.10), ("pivl", 0.11)):
            for protocol, target in (("synth-a->synth-b", "synth-b"), ("synth-b->synth-c", "synth-c")):
                rows.append({"protocol": protocol, "method": method, "variant": "", "preset": "smoke", "seed": seed,
                             "target": target, "mAP": base + 0.01 * seed, "rank1": base + 0.02 * seed})
                # a second target of the same run (the real crops): never in the synthetic panels
                rows.append({**rows[-1], "target": "real-vtest", "mAP": 0.9})
        rows.append({"protocol": "synth-a->synth-b", "method": "muva", "variant": "gating-none", "preset": "smoke",
                     "seed": seed, "target": "synth-b", "mAP": 0.05 + 0.01 * seed, "rank1": 0.06})
    return pd.DataFrame(rows, columns=tables.RESULT_COLUMNS)


def _dots(ax) -> list[float]:
    return sorted(round(float(y), 6) for c in ax.collections if isinstance(c, PathCollection)
                  for _, y in c.get_offsets())


def test_method_seeds_one_dot_per_seed_own_target_only(tmp_path):
    fig = vr.method_seeds(_rows(), ["muva", "clipreid", "pivl"], ["synth-a->synth-b", "synth-b->synth-c"])
    assert fig.number not in plt.get_fignums()
    ax = fig.axes[0]
    assert ax.get_title() == "synth-a->synth-b (3 seeds)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["MUVA", "CLIP-ReID", "pi-VL"]
    # 3 methods x 3 seeds in %, the ablation (5-7 %) and the real-crop target (90 %) left out
    expected = sorted(round(100 * (b + 0.01 * s), 6) for b in (0.12, 0.10, 0.11) for s in (0, 1, 2))
    assert _dots(ax) == expected
    a = save_figure(fig, "t", "m", out_dir=tmp_path / "a").read_bytes()
    assert a == save_figure(fig, "t", "m", out_dir=tmp_path / "b").read_bytes()


def test_method_seeds_uneven_seed_counts_in_title():
    r = _rows()
    r = r[~((r["method"] == "pivl") & (r["seed"] == 2))]
    fig = vr.method_seeds(r, ["muva", "clipreid", "pivl"], ["synth-b->synth-c"])
    assert fig.axes[0].get_title() == "synth-b->synth-c (2-3 seeds)"
    assert vr.method_seeds(r[r["seed"] == 0]).axes[0].get_title() == "synth-a->synth-b (1 seed)"
    # a method without any run gets no column; one without a run on a panel's protocol an empty one
    r = r[(r["method"] != "clipreid") & ~((r["method"] == "pivl") & (r["protocol"] == "synth-a->synth-b"))]
    fig = vr.method_seeds(r, ["muva", "clipreid", "pivl"], ["synth-a->synth-b"])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["MUVA", "pi-VL"]
    assert fig.axes[0].get_title() == "synth-a->synth-b (3 seeds)"


def test_ablation_seeds_recipe_then_variants():
    fig = vr.ablation_seeds(_rows())
    assert len(fig.axes) == 1  # only MUVA has ablation runs
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "full recipe" and labels[1] == "no gating"
    assert _dots(ax) == sorted([12.0, 13.0, 14.0, 5.0, 6.0, 7.0])
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_ydata()[0] == pytest.approx(13.0)


def test_errors_name_the_problem():
    empty = pd.DataFrame(columns=tables.RESULT_COLUMNS)
    with pytest.raises(ValueError, match="no finished runs"):
        vr.method_seeds(empty)
    with pytest.raises(ValueError, match="no ablation runs on synth-b->synth-c"):
        vr.ablation_seeds(_rows(), protocol="synth-b->synth-c")
    with pytest.raises(ValueError, match="unknown metric 'map'"):
        vr.method_seeds(_rows(), metric="map")

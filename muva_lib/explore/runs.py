"""The runs explorer: several run folders side by side: their stage-1 / stage-2 curves or target metrics over
epochs, the final metrics per target, and the configuration keys in which they differ."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import ipywidgets as widgets

from ..tables import format_table
from ..train.rundir import RunDir
from ..viz import training as vt
from .base import Explorer, View

__all__ = ["CURVES", "config_differences", "run_label", "runs_explorer"]

CURVES = ("stage 2", "stage 1", "target metrics")


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, Mapping) else {f"{prefix}{k}": v})
    return out


def config_differences(configs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows ``{key, <label>: value, ...}`` for every (dotted) configuration key whose value differs between the
    labelled configs (``config.json`` contents); a key missing from one shows as ``-``."""
    flat = {label: _flat(c) for label, c in configs.items()}
    keys = sorted(set().union(*(f.keys() for f in flat.values()))) if flat else []
    rows = []
    for key in keys:
        values = [json.dumps(f.get(key, "-"), default=str) for f in flat.values()]
        if len(set(values)) > 1:
            rows.append({"key": key, **{label: f.get(key, "-") for label, f in flat.items()}})
    return rows


def run_label(run: str | Path) -> str:
    """``<method>/<folder name>`` of a run folder (folders sit under ``runs/<protocol>/<method>/``)."""
    run = Path(run)
    return f"{run.parent.name}/{run.name}"


def runs_explorer(runs: Sequence[str | Path], curves: str = CURVES[0]) -> Explorer:
    """Explore finished (or running) run folders: which runs (several may be selected), which curves
    (:data:`CURVES`, ``curves`` first). The info lists each run's final metrics per target and the config differences.
    ``state``: ``labels`` (the selected runs), ``metrics`` (label -> target -> mAP, rank1, mINP), ``differences``."""
    folders = {run_label(r): Path(r) for r in runs}
    if not folders:
        raise ValueError("runs_explorer: give at least one run folder")
    if curves not in CURVES:
        raise ValueError(f"curves must be one of {CURVES}, got {curves!r}")
    for label, root in folders.items():
        if not (root / "config.json").is_file():
            raise FileNotFoundError(f"{root}: not a run folder (no config.json)")
    controls: dict[str, widgets.ValueWidget] = {
        "runs": widgets.SelectMultiple(options=list(folders), value=tuple(folders), description="runs",
                                       rows=min(6, len(folders)), layout=widgets.Layout(width="420px")),
        "curves": widgets.Dropdown(options=CURVES, value=curves, description="curves"),
    }

    def render(v: Mapping[str, Any]) -> View:
        labels = list(v["runs"])
        if not labels:
            raise ValueError("select at least one run")
        dirs = {label: RunDir(folders[label]) for label in labels}
        if v["curves"] == "target metrics":
            fig = vt.metric_curves({label: d.read_rows("eval") for label, d in dirs.items()})
        else:
            stage = "stage1" if v["curves"] == "stage 1" else "stage2"
            fig = vt.loss_curves({label: d.read_rows(stage) for label, d in dirs.items()}, title=v["curves"])
        metrics: dict[str, dict[str, dict[str, float]]] = {}
        for label, d in dirs.items():
            metrics[label] = {p.stem: {k: json.loads(p.read_text()).get(k) for k in ("mAP", "rank1", "mINP")}
                              for p in sorted((d.root / "metrics").glob("*.json"))}
        rows = [{"run": label, "target": t, **{k: round(x, 4) if isinstance(x, float) else x for k, x in m.items()}}
                for label, per in metrics.items() for t, m in per.items()]
        diffs = config_differences({label: json.loads(d.config_path.read_text()) for label, d in dirs.items()})
        info = [format_table(rows) if rows else "no final metrics yet",
                "config differences:" if diffs else "same configuration" if len(labels) > 1 else ""]
        if diffs:
            info.append(format_table(diffs))
        return View(fig, {"labels": labels, "metrics": metrics, "differences": diffs}, "\n".join(i for i in info if i))

    return Explorer("runs", controls, render)

"""Results tables: collected run metrics, paper-layout tables (the reported numbers: :mod:`muva_lib.reported`), Markdown and LaTeX export."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from .reported import PAPER_TABLES, PaperTable, paper_rows, parse_pair
from .utils import fmt_pct

__all__ = ["format_table", "fmt_pct", "PaperTable", "PAPER_TABLES", "METHOD_NAMES", "paper_rows", "collect_results",
           "summarise", "cell", "PAIRED_METHODS", "paired_differences", "paired_cell", "paired_comparisons",
           "paired_table", "leakage_table", "LEAKAGE_INIT", "INIT_NAMES", "OWN_INITS", "init_of", "init_name",
           "metrics_table", "results_table", "paper_table", "synthetic_table", "real_table", "ablation_table",
           "real_columns", "own_target", "REAL_TARGET", "PART_PHASE_COLUMNS", "part_phase_row", "part_phase_table",
           "to_markdown", "to_latex", "export_table"]


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                 markdown: bool = True) -> str:
    """Rows of dicts as a fixed-width pipe table (valid Markdown when ``markdown``).

    Columns default to the keys of the first row, in order; missing cells print as ``-``.
    Numbers are printed as given: round them before calling to keep outputs stable.
    """
    if not rows:
        return "(no rows)"
    cols = list(columns or rows[0].keys())
    cells = [[("-" if r.get(c) is None else str(r.get(c))) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    out = [line(cols), sep if markdown else sep.replace("|", "+")]
    out += [line(row) for row in cells]
    return "\n".join(out)


METHOD_NAMES: dict[str, str] = {"muva": "MUVA", "clipreid": "CLIP-ReID", "pivl": "pi-VL"}


# ----------------------------------------------------------------------------- our runs

RESULT_COLUMNS = ["protocol", "method", "variant", "preset", "init", "seed", "target", "mAP", "rank1", "rank5",
                  "rank10", "mINP", "config_hash", "run"]

#: ``model.pretrained`` of the leakage control's runs: the second pretraining, on a corpus drawn with synth-b's
#: style excluded (``python -m muva_lib synth-pretrain --exclude-style synth-b``)
LEAKAGE_INIT = "pretrain-run:default-clip-s0-no-synth-b"
#: how an ``init`` (normalised ``model.pretrained``) reads in tables and figures
INIT_NAMES: dict[str, str] = {"synth": "pretrained", "openai": "pretrained (openai)", "random": "random init",
                              LEAKAGE_INIT: "pretrained without synth-b's style"}


#: the inits that are a preset's own pretrained weights (``""``: a run without a config); tables name every other
OWN_INITS: tuple[str, ...] = ("", "synth", "openai")


def init_of(pretrained: str | None) -> str:
    """A run's weights origin as a results key: ``random`` for random init (``""``, ``none``), else
    ``model.pretrained`` as written (``synth``, ``openai``, ``pretrain-run:NAME``, a file)."""
    p = (pretrained or "").strip()
    return "random" if p.lower() in ("", "none", "random") else p


def init_name(init: str) -> str:
    """The reader's name of an init (:data:`INIT_NAMES`; ``pretrain-run:NAME`` -> ``pretrained (NAME)``)."""
    if init in INIT_NAMES:
        return INIT_NAMES[init]
    return f"pretrained ({init.split(':', 1)[-1]})" if init else "init unknown"


def _run_init(run: Path) -> str:
    """``init`` of a run folder from its ``config.json`` (``""`` when the file is missing or unreadable)."""
    try:
        return init_of(json.loads((run / "config.json").read_text())["model"]["pretrained"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def collect_results(runs_root: str | Path | None = None, preset: str | None = None) -> pd.DataFrame:
    """One row per (finished run, target) under ``runs_root`` (default ``muva_lib.paths.runs_root()``):
    ``protocol, method, variant, preset, init, seed, target, mAP, rank1, rank5, rank10, mINP`` (fractions),
    ``config_hash`` and ``run`` (the folder relative to the root). ``init`` is where the CLIP weights came
    from (:func:`init_of` of the run's ``config.json``; ``""`` without one). A run is a folder with a
    ``manifest.json`` saying ``finished`` and ``metrics/<target>.json`` files; of several runs with the
    same protocol, method, variant, preset, init and seed only the newest (by folder name) counts."""
    from .paths import runs_root as default_root

    root = Path(runs_root) if runs_root is not None else default_root()
    latest: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for manifest in sorted(root.glob("**/manifest.json")):
        run = manifest.parent
        try:
            info = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if info.get("status") != "finished" or "method" not in info:
            continue
        if preset is not None and info.get("preset") != preset:
            continue
        rows = []
        init = _run_init(run)
        for p in sorted((run / "metrics").glob("*.json")):
            m = json.loads(p.read_text())
            rows.append({"protocol": info["protocol"], "method": info["method"], "variant": info.get("variant", ""),
                         "preset": info.get("preset"), "init": init,
                         "seed": info.get("seed"), "target": m.get("target", p.stem),
                         **{k: m.get(k) for k in ("mAP", "rank1", "rank5", "rank10", "mINP")},
                         "config_hash": info.get("config_hash"), "run": run.relative_to(root).as_posix()})
        if rows:
            key = (info["protocol"], info["method"], info.get("variant", ""), info.get("preset"), init, info.get("seed"))
            if key not in latest or latest[key][0]["run"].rsplit("/", 1)[-1] < run.name:
                latest[key] = rows
    rows = [r for key in sorted(latest, key=str) for r in latest[key]]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def summarise(results: pd.DataFrame, variants: bool = False) -> pd.DataFrame:
    """Mean and spread over seeds: one row per protocol, method, preset, init, target with ``seeds`` (count),
    ``mAP``, ``mAP_std``, ``rank1``, ``rank1_std``, ``mINP`` (fractions; std with ddof=1, NaN for one seed).

    Runs with a ``variant`` (ablations) are left out, unless ``variants``: then they are kept and
    ``variant`` is one more key column (``""`` for the method's own recipe)."""
    keys = ["protocol", "method", *(["variant"] if variants else []), "preset", "init", "target"]
    cols = keys + ["seeds", "mAP", "mAP_std", "rank1", "rank1_std", "mINP"]
    if not variants and not results.empty:
        results = results[results["variant"].fillna("") == ""]
    if results.empty:
        return pd.DataFrame(columns=cols)
    results = results.assign(variant=results["variant"].fillna(""), init=results["init"].fillna(""))
    g = results.groupby(keys, sort=True)
    out = g.agg(seeds=("seed", "nunique"), mAP=("mAP", "mean"), mAP_std=("mAP", "std"), rank1=("rank1", "mean"),
                rank1_std=("rank1", "std"), mINP=("mINP", "mean")).reset_index()
    return out[cols]


# ----------------------------------------------------------------------------- layouts

def cell(mAP: float | None, r1: float | None, mAP_std: float | None = None, r1_std: float | None = None,
         percent: bool = False) -> str:
    """``"mAP / R1"`` with one decimal (fractions unless ``percent``), ``±std`` when given; ``-`` when empty."""
    if mAP is None or r1 is None or pd.isna(mAP) or pd.isna(r1):
        return "-"
    scale = 1.0 if percent else 100.0

    def one(v: float, s: float | None) -> str:
        return f"{v * scale:.1f}" + ("" if s is None or pd.isna(s) else f"±{s * scale:.1f}")
    return f"{one(mAP, mAP_std)} / {one(r1, r1_std)}"


def metrics_table(rows: Mapping[str, Mapping[str, Any]], keys: Sequence[str] = ("mAP", "rank1", "rank5", "mINP")
                  ) -> pd.DataFrame:
    """Side by side: one row per label (a method, a baseline) with ``keys`` of its metrics dict
    (fractions) in percent, one decimal; a missing metric is ``-``."""
    names = {"rank1": "R1", "rank5": "R5", "rank10": "R10"}
    out = [{"method": label, **{names.get(k, k): fmt_pct(m.get(k)) for k in keys}} for label, m in rows.items()]
    return pd.DataFrame(out, columns=["method", *(names.get(k, k) for k in keys)])


def _ours_label(preset: str, seeds: int, init: str = "") -> str:
    """``ours (smoke, 3 seeds)``; the init is named when it is not a preset's own pretrained weights
    (random init, the leakage control's weights)."""
    extra = "" if init in OWN_INITS else f", {init_name(init)}"
    return f"ours ({preset}{extra}, {seeds} seed{'s' if seeds != 1 else ''})"


def _groups(sub: pd.DataFrame, method: str) -> list[tuple[str, str, pd.DataFrame]]:
    """``(preset, init, rows)`` of ``method`` in a summary, presets sorted, the preset's own weights first."""
    out = []
    s = sub[sub["method"] == method]
    for preset in sorted(s["preset"].unique()):
        p = s[s["preset"] == preset]
        for init in sorted(p["init"].unique(), key=lambda i: (i not in OWN_INITS, i == "random", i)):
            out.append((preset, init, p[p["init"] == init]))
    return out


def own_target(rows: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """The rows of ``protocol``'s first own target (a run may also hold metrics on other targets,
    e.g. a synthetic run evaluated on the real crops); all rows when the protocol is unknown."""
    from .data.protocols import get_protocol

    try:
        first = get_protocol(protocol).target_datasets[0]
    except (KeyError, ValueError):
        return rows
    return rows[rows["target"] == first]


def results_table(summary: pd.DataFrame, protocols: Sequence[str], methods: Iterable[str] | None = None
                  ) -> pd.DataFrame:
    """Our rows in the paper's layout: one row per (method, preset) with ``method``, ``source`` and one
    ``"mAP / R1"`` column per protocol (the first target of each). ``methods`` fixes the row order."""
    sub = summary[summary["protocol"].isin(protocols)]
    order = list(methods) if methods is not None else sorted(sub["method"].unique())
    rows = []
    for method in order:
        for preset, init, s in _groups(sub, method):
            row = {"method": METHOD_NAMES.get(method, method),
                   "source": _ours_label(preset, int(s["seeds"].max()), init)}
            for proto in protocols:
                hit = own_target(s[s["protocol"] == proto], proto)
                row[proto] = "-" if hit.empty else cell(*hit.iloc[0][["mAP", "rank1", "mAP_std", "rank1_std"]])
            rows.append(row)
    return pd.DataFrame(rows, columns=["method", "source", *protocols])


def paper_table(name: str, summary: pd.DataFrame | None = None, methods: Iterable[str] | None = None
                ) -> pd.DataFrame:
    """``PAPER_TABLES[name]`` in the paper's layout, our runs of those protocols (if any) on top."""
    t = PAPER_TABLES[name]
    ours = results_table(summary, t.protocols, methods) if summary is not None and not summary.empty else None
    reported = []
    for method, source, values in t.rows:
        pairs = [parse_pair(c) for c in values.split()]
        reported.append({"method": method, "source": source,
                         **{p: "-" if v is None else cell(*v, percent=True) for p, v in zip(t.protocols, pairs)}})
    rep = pd.DataFrame(reported, columns=["method", "source", *t.protocols])
    if ours is None or ours.empty:
        return rep
    return pd.concat([ours, rep], ignore_index=True)


def synthetic_table(summary: pd.DataFrame, methods: Iterable[str] | None = None,
                    extra: Sequence[Mapping[str, str]] = ()) -> pd.DataFrame:
    """The synthetic benchmark: a row per method (and preset), a column per synthetic protocol that has
    runs; ``extra`` rows (e.g. the colour baseline, already formatted) are appended."""
    from .data.protocols import synthetic_protocols

    present = set(summary["protocol"]) if not summary.empty else set()
    protocols = [p for p in synthetic_protocols() if p in present]
    table = results_table(summary, protocols, methods)
    if extra:
        table = pd.concat([table, pd.DataFrame(list(extra))], ignore_index=True).fillna("-")
    return table


#: the real tracklet set (crops of vtest.avi, pseudo-identities from tracking)
REAL_TARGET = "real-vtest"


def real_table(summary: pd.DataFrame, methods: Iterable[str] | None = None,
               source: str = "synth-a->synth-b", extra: Sequence[Mapping[str, str]] = ()) -> pd.DataFrame:
    """The real tracklet set (pseudo-labelled): a row per method (and preset) with two ``"mAP / R1"``
    columns, a run trained on ``source`` evaluated on the real crops (the run's
    ``metrics/real-vtest.json``, see :func:`muva_lib.runs.real_track`), and a run trained on the real
    set's own training split. ``-`` where there is no such run; ``extra`` rows (e.g. the colour
    baselines of :func:`muva_lib.baselines.colour_rows`, keyed by :func:`real_columns`) are appended."""
    cols = dict(zip(real_columns(source), (source, REAL_TARGET)))
    sub = summary[(summary["target"] == REAL_TARGET) & summary["protocol"].isin(list(cols.values()))] \
        if not summary.empty else summary
    order = list(methods) if methods is not None else sorted(sub["method"].unique())
    rows = []
    for method in order:
        for preset, init, s in _groups(sub, method):
            row = {"method": METHOD_NAMES.get(method, method),
                   "source": _ours_label(preset, int(s["seeds"].max()), init)}
            for name, proto in cols.items():
                hit = s[s["protocol"] == proto]
                row[name] = "-" if hit.empty else cell(*hit.iloc[0][["mAP", "rank1", "mAP_std", "rank1_std"]])
            rows.append(row)
    rows += [dict(r) for r in extra]
    return pd.DataFrame(rows, columns=["method", "source", *cols]).fillna("-")


def ablation_table(results: pd.DataFrame, protocol: str = "synth-a->synth-b",
                   methods: Iterable[str] | None = None) -> pd.DataFrame:
    """The ablations (:data:`muva_lib.config.ABLATIONS`) on ``protocol``: per method with ablation runs
    its own recipe, then each of its ablations that has runs, with ``"mAP / R1"`` (mean ± std over seeds), the
    number of seeds and the paired mAP change against the recipe (:func:`paired_cell` of the differences seed
    by seed, in points: ``*`` outside one std)."""
    from .config import ABLATIONS

    summary = summarise(results, variants=True)
    sub = own_target(summary[summary["protocol"] == protocol], protocol) if not summary.empty else summary
    order = list(methods) if methods is not None else sorted({a.method for a in ABLATIONS.values()})
    rows = []
    for method in order:
        for preset, init, s in _groups(sub, method):
            if (s["variant"] == "").all():
                continue  # the recipe alone is no ablation
            has_recipe = (s["variant"] == "").any()
            sel = {"method": method, "preset": preset, "init": init}
            variants = [("", "full recipe")] + [(k, a.label) for k, a in ABLATIONS.items() if a.method == method]
            for key, label in variants:
                hit = s[s["variant"] == key]
                if hit.empty:
                    continue
                r = hit.iloc[0]
                delta = "" if key == "" or not has_recipe else paired_cell(
                    paired_differences(results, {**sel, "variant": key}, {**sel, "variant": ""}, protocol))
                where = preset if init in OWN_INITS else f"{preset}, {init_name(init)}"
                rows.append({"method": METHOD_NAMES.get(method, method), "variant": label, "preset": where,
                             "seeds": int(r["seeds"]), protocol: cell(r["mAP"], r["rank1"], r["mAP_std"],
                                                                      r["rank1_std"]),
                             "mAP change (paired)": delta or "-"})
    return pd.DataFrame(rows, columns=["method", "variant", "preset", "seeds", protocol, "mAP change (paired)"])


def real_columns(source: str = "synth-a->synth-b") -> tuple[str, str]:
    """The real table's two column names: trained on ``source``, trained on the real set's own split."""
    return f"trained on {source}", "trained on real-vtest (own split)"


#: the numbers of :func:`part_phase_table`, from the last part epoch's row of ``logs/stage1.csv``
PART_PHASE_COLUMNS = ("acc", "acc_chance", "part_acc", "part_acc_chance")
_PART_PHASE_NAMES = {"acc": "acc", "acc_chance": "chance (acc)", "part_acc": "part_acc",
                     "part_acc_chance": "chance (part_acc)"}


def part_phase_row(run: str | Path) -> dict[str, Any]:
    """One pi-VL run's stage-1 part phase: ``part_epochs``, ``seed``, ``lr``, :data:`PART_PHASE_COLUMNS`
    of its last part epoch (``None`` where the log has no such column, e.g. chance levels of older runs)
    and ``mAP`` on the protocol's first target (fractions; ``None`` without its metrics), ``run`` (the
    folder). Raises ``ValueError`` naming the log when the run has no completed part phase."""
    from .data.protocols import get_protocol
    from .train.rundir import RunDir

    def value(v: Any) -> float | None:  # a CSV cell read back: int or float, "" where the epoch has none
        return float(v) if isinstance(v, (int, float)) else None

    rd = RunDir(run)
    cfg = rd.config()
    last = cfg.stage1.epochs + cfg.stage1.part_epochs
    row = next((r for r in rd.read_rows("stage1") if r.get("epoch") == last), None)
    if cfg.stage1.part_epochs < 1 or row is None or value(row.get("loss_part_nce")) is None:
        raise ValueError(f"{rd.log_path('stage1')}: no part epoch {last} (stage1.epochs={cfg.stage1.epochs}, "
                         f"stage1.part_epochs={cfg.stage1.part_epochs}); is {rd.root} a finished pi-VL run?")
    target = get_protocol(cfg.data.protocol).target_datasets[0]
    metrics = rd.read_metrics().get(target, {})
    return {"part_epochs": cfg.stage1.part_epochs, "seed": cfg.seed, "lr": value(row.get("lr")),
            **{k: value(row.get(k)) for k in PART_PHASE_COLUMNS},
            "mAP": metrics.get("mAP"), "target": target, "run": str(rd.root)}


def part_phase_table(rows: Sequence[Mapping[str, Any]], runs_root: str | Path | None = None) -> pd.DataFrame:
    """:func:`part_phase_row` rows as a table: one row per part-epoch setting and seed (in that order),
    then, for a setting with several seeds, their mean. Accuracies and chance levels with three
    decimals, the target mAP in percent, the last part epoch's rate; ``run`` relative to ``runs_root``
    (default ``muva_lib.paths.runs_root()``) when under it."""
    from .paths import runs_root as default_root

    root = Path(runs_root) if runs_root is not None else default_root()

    def num(v: Any, fmt: str) -> str:
        return "-" if v is None or pd.isna(v) else format(v, fmt)

    def line(part_epochs: Any, seed: Any, r: Mapping[str, Any], run: str) -> dict[str, str]:
        return {"part epochs": str(part_epochs), "seed": str(seed), "last part lr": num(r["lr"], ".1e"),
                **{_PART_PHASE_NAMES[k]: num(r[k], ".3f") for k in PART_PHASE_COLUMNS},
                f"mAP ({r['target']})": fmt_pct(None if r["mAP"] is None or pd.isna(r["mAP"]) else r["mAP"]),
                "run": run}

    def rel(path: str) -> str:
        p = Path(path)
        return p.relative_to(root).as_posix() if p.is_relative_to(root) else p.as_posix()

    ordered = sorted(rows, key=lambda r: (r["part_epochs"], r["seed"]))
    targets = {r["target"] for r in ordered}
    if len(targets) > 1:
        raise ValueError(f"part-phase rows of different targets ({', '.join(sorted(targets))}): one protocol a table")
    out = []
    for n in dict.fromkeys(r["part_epochs"] for r in ordered):
        group = [r for r in ordered if r["part_epochs"] == n]
        out += [line(n, r["seed"], r, rel(r["run"])) for r in group]
        if len(group) > 1:
            frame = pd.DataFrame(group)
            mean = {k: frame[k].astype(float).mean(skipna=False) for k in ("lr", *PART_PHASE_COLUMNS, "mAP")}
            out.append(line(n, f"mean of {len(group)}", {**mean, "target": group[0]["target"]}, ""))
    columns = ["part epochs", "seed", "last part lr", *_PART_PHASE_NAMES.values(),
               f"mAP ({ordered[0]['target']})" if ordered else "mAP", "run"]
    return pd.DataFrame(out, columns=columns)


# ----------------------------------------------------------------------------- export

def to_markdown(table: pd.DataFrame) -> str:
    """A table of string cells as fixed-width Markdown (see :func:`format_table`)."""
    return format_table(table.to_dict("records"), list(table.columns))


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "$": r"\$", "{": r"\{",
          "}": r"\}", "->": r"$\to$", "±": r"$\pm$", "‡": r"\ddag{}", "†": r"\dag{}", "~": r"\textasciitilde{}"}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in sorted(_LATEX, key=len, reverse=True)))


def _tex(text: Any) -> str:
    """Escape LaTeX specials in one pass (arrows and ± become math)."""
    return _LATEX_RE.sub(lambda m: _LATEX[m.group(0)], str(text))


def to_latex(table: pd.DataFrame, caption: str = "", label: str = "") -> str:
    """A booktabs ``table`` environment (left-aligned text columns, centred result columns)."""
    cols = list(table.columns)
    text_cols = sum(1 for c in cols if c in ("method", "source"))
    spec = "l" * text_cols + "c" * (len(cols) - text_cols)
    lines = [r"\begin{table}[t]", r"\centering", r"\small"]
    if caption:
        lines.append(rf"\caption{{{_tex(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(_tex(c) for c in cols) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex(v) for v in row) + r" \\" for row in table.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def export_table(table: pd.DataFrame, name: str, caption: str = "", out_dir: str | Path | None = None
                 ) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.md`` (caption line + Markdown table) and ``<name>.tex`` (booktabs);
    default folder ``figures/tables/``. Same table, same bytes. Returns both paths."""
    from .paths import figures_root
    from .utils import atomic_write_text

    folder = Path(out_dir) if out_dir is not None else figures_root() / "tables"
    md = (f"{caption}\n\n" if caption else "") + to_markdown(table) + "\n"
    tex = to_latex(table, caption, f"tab:{name}")
    return (atomic_write_text(folder / f"{name}.md", md), atomic_write_text(folder / f"{name}.tex", tex))


# ----------------------------------------------------------------------------- paired comparisons (the sweep)

#: the method pairs compared under each init by :func:`paired_table` (a minus b)
PAIRED_METHODS: tuple[tuple[str, str], ...] = (("muva", "clipreid"), ("pivl", "clipreid"))


def paired_differences(results: pd.DataFrame, a: Mapping[str, str], b: Mapping[str, str], protocol: str,
                       metric: str = "mAP") -> dict[str, Any]:
    """``a`` minus ``b`` seed by seed on ``protocol``'s own target: runs are selected by the column values of
    ``a`` / ``b`` (e.g. ``{"method": "muva", "init": "synth"}``), recipe runs only unless a selection names its
    ``variant`` (an ablation against its recipe: ``{..., "variant": "vge-gt"}`` minus ``{..., "variant": ""}``),
    and paired by seed. Returns ``seeds`` (paired seeds), ``diffs`` (per seed, in points, seed order), ``mean``, ``std``
    (ddof=1; NaN for one seed) and ``outside``: the mean lies outside one std of the differences
    (``|mean| > std``, two seeds or more), the README's mark for a difference larger than its seed spread."""
    sub = own_target(results[results["protocol"] == protocol], protocol).assign(
        variant=lambda d: d["variant"].fillna(""))

    def pick(sel: Mapping[str, str]) -> pd.Series:
        rows = sub
        for k, v in {"variant": "", **sel}.items():
            rows = rows[rows[k] == v]
        return rows.groupby("seed")[metric].mean()

    sa, sb = pick(a), pick(b)
    seeds = sorted(set(sa.index) & set(sb.index))
    diffs = [100.0 * (float(sa[s]) - float(sb[s])) for s in seeds]
    mean = float(pd.Series(diffs).mean()) if diffs else float("nan")
    std = float(pd.Series(diffs).std(ddof=1)) if len(diffs) > 1 else float("nan")
    return {"seeds": seeds, "diffs": diffs, "mean": mean, "std": std,
            "outside": len(diffs) > 1 and abs(mean) > std}


def paired_cell(d: Mapping[str, Any]) -> str:
    """``+3.1±1.2 *`` (points; ``*``: outside one std; ``(n=2)`` when fewer than three seeds); ``-`` when empty."""
    if not d["diffs"]:
        return "-"
    spread = "" if pd.isna(d["std"]) else f"±{d['std']:.1f}"
    few = "" if len(d["diffs"]) >= 3 else f" (n={len(d['diffs'])})"
    return f"{d['mean']:+.1f}{spread}{' *' if d['outside'] else ''}{few}"


def paired_comparisons(methods: Sequence[str] = ("muva", "clipreid", "pivl"),
                       inits: Sequence[str] = ("synth", "random")) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """The sweep's paired comparisons, ``(label, a, b)``: each method pretrained minus random init, then MUVA
    and pi-VL minus CLIP-ReID under each init."""
    out = [(f"{METHOD_NAMES.get(m, m)}: {init_name(inits[0])} - {init_name(inits[1])}",
            {"method": m, "init": inits[0]}, {"method": m, "init": inits[1]}) for m in methods]
    for init in inits:
        out += [(f"{METHOD_NAMES.get(x, x)} - {METHOD_NAMES.get(y, y)} ({init_name(init)})",
                 {"method": x, "init": init}, {"method": y, "init": init}) for x, y in PAIRED_METHODS]
    return out


def paired_table(results: pd.DataFrame, protocols: Sequence[str], metric: str = "mAP") -> pd.DataFrame:
    """One row per comparison of :func:`paired_comparisons` with a :func:`paired_cell` per protocol (mAP
    points, mean ± std over paired seeds, ``*`` outside one std); comparisons without any pair are left out."""
    rows = []
    for label, a, b in paired_comparisons():
        cells = {p: paired_cell(paired_differences(results, a, b, p, metric)) for p in protocols}
        if any(c != "-" for c in cells.values()):
            rows.append({"comparison": label, **cells})
    return pd.DataFrame(rows, columns=["comparison", *protocols])


def leakage_table(results: pd.DataFrame, protocol: str = "synth-a->synth-b",
                  methods: Iterable[str] = ("muva", "clipreid", "pivl")) -> pd.DataFrame:
    """The leakage control on ``protocol``: a row per method with ``"mAP / R1"`` (mean ± std over seeds) from
    the shipped pretrained weights, from the pretraining without the target's style (:data:`LEAKAGE_INIT`) and
    from random init, and the paired mAP differences shipped minus leakage-control ("what seeing the target's
    look in pretraining bought") and leakage-control minus random ("what the rest of pretraining bought").
    Empty when no leakage-control run exists."""
    if results.empty or not (results["init"] == LEAKAGE_INIT).any():
        return pd.DataFrame()
    summary = own_target(summarise(results[results["protocol"] == protocol]), protocol)
    inits = ("synth", LEAKAGE_INIT, "random")
    rows = []
    for m in methods:
        row: dict[str, Any] = {"method": METHOD_NAMES.get(m, m)}
        for init in inits:
            hit = summary[(summary["method"] == m) & (summary["init"] == init)]
            row[init_name(init)] = "-" if hit.empty else \
                cell(*hit.iloc[0][["mAP", "rank1", "mAP_std", "rank1_std"]]) + f" (n={int(hit.iloc[0]['seeds'])})"
        for (x, y) in ((inits[0], inits[1]), (inits[1], inits[2])):
            d = paired_differences(results, {"method": m, "init": x}, {"method": m, "init": y}, protocol)
            row[f"{init_name(x)} - {init_name(y)} (mAP)"] = paired_cell(d)
        rows.append(row)
    return pd.DataFrame(rows)

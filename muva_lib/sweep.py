"""The committed sweep: its plan (protocols x methods x inits x seeds, ablations, the leakage control), the per-run
records that survive a change of machine, and the tables and figures rebuilt from them.

A finished run's small files (``config.json``, ``manifest.json``, ``metrics/*.json``, ``logs/*.csv``; never
checkpoints, caches or TensorBoard files) are copied into ``figures/sweep/records/<protocol>/<method>/<run>/``
(:func:`record_run`, atomically: a half-copied record never exists). The records are committed as runs finish,
so a sweep continues elsewhere: a job whose config has a record is skipped (:func:`find_record`), and the
tables and seed figures are written from the records alone (:func:`write_tables`), not from ``runs/``.

The sweep (``python -m muva_lib run --all-synthetic --ablations --inits synth random --leakage --seeds 0 1 2
--jobs 2 --notebooks``): every synthetic protocol x MUVA, CLIP-ReID, pi-VL x three seeds, once from the shipped
pretrained CLIP (``model.pretrained=synth``) and once from random init (``model.pretrained=``); MUVA's and pi-VL's
ablations from the pretrained weights; and the leakage control, ``synth-a->synth-b`` x the three methods from a
second pretraining whose corpus excludes synth-b's style (:data:`muva_lib.tables.LEAKAGE_INIT`).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable

from .config import RunCfg
from .paths import runs_root
from .runs import find_run, sweep_dir
from .tables import LEAKAGE_INIT
from .train.rundir import RunDir

__all__ = ["RECORD_FILES", "INITS", "LEAKAGE_PROTOCOL", "records_dir", "record_run", "find_record",
           "init_override", "sweep_part", "write_tables", "frozen_rows", "SWEEP_COMMAND", "TABLES_COMMAND"]

#: the files of a run that make its record (globs relative to the run folder)
RECORD_FILES: tuple[str, ...] = ("config.json", "manifest.json", "metrics/*.json", "logs/*.csv")
#: ``--inits`` names -> ``model.pretrained``
INITS: dict[str, str] = {"synth": "synth", "random": "", "leakage": LEAKAGE_INIT}
#: the protocol of the leakage control (its target, synth-b, is the style left out of the second corpus)
LEAKAGE_PROTOCOL = "synth-a->synth-b"
#: the command that makes the whole sweep, and the one that rebuilds its tables from the records alone
_PLAN = "python -m muva_lib run --all-synthetic --ablations --inits synth random --leakage --seeds 0 1 2"
SWEEP_COMMAND = f"{_PLAN} --jobs 2 --notebooks"
TABLES_COMMAND = f"{_PLAN} --tables-only"


def records_dir() -> Path:
    """``figures/sweep/records/`` (under ``$MUVA_FIGURES``): the committed per-run records."""
    return sweep_dir() / "records"


def sweep_part(init: str, variant: str) -> str:
    """Which part of the sweep a run or job belongs to, from its init (:func:`muva_lib.tables.init_of`) and
    variant: ``pretrained``, ``random init``, ``leakage control`` or ``ablations``."""
    if init == "random":
        return "random init"
    if init != "synth":
        return "leakage control"
    return "ablations" if variant else "pretrained"


def init_override(name: str) -> str:
    """``--inits`` name (``synth``, ``random``, ``leakage``) -> its ``model.pretrained=...`` override."""
    if name not in INITS:
        raise ValueError(f"--inits {name}: choose from {', '.join(INITS)}")
    return f"model.pretrained={INITS[name]}"


def record_run(run: RunDir | str | Path, root: str | Path | None = None, runs: str | Path | None = None) -> Path:
    """Copy the small files of a finished run into the records (``root``, default :func:`records_dir`) at the
    run's path relative to ``runs`` (default ``runs_root()``); the record's folder. An existing record is kept
    as it is (records are never rewritten); an unfinished run is an error naming it."""
    run = run if isinstance(run, RunDir) else RunDir(run)
    status = run.manifest().get("status")
    if status != "finished":
        raise ValueError(f"{run.root}: not a finished run (manifest status: {status or 'none'}); nothing recorded")
    base = Path(runs) if runs is not None else runs_root()
    try:
        rel = run.root.resolve().relative_to(base.resolve())
    except ValueError:
        rel = Path(run.root.parent.parent.name) / run.root.parent.name / run.root.name
    dest = (Path(root) if root is not None else records_dir()) / rel
    if (dest / "manifest.json").is_file():
        return dest
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for pattern in RECORD_FILES:
        for src in sorted(run.root.glob(pattern)):
            out = tmp / src.relative_to(run.root)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out)
    if not (tmp / "manifest.json").is_file() or not (tmp / "config.json").is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"{run.root}: no config.json / manifest.json to record")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)
    return dest


def find_record(cfg: RunCfg, root: str | Path | None = None) -> RunDir | None:
    """The record of ``cfg`` (its config equal apart from :data:`muva_lib.runs.MATCH_IGNORED`), or None."""
    return find_run(cfg, root if root is not None else records_dir())


def _figure(fig, name: str, out: Path) -> Path:  # noqa: ANN001
    from .viz import save_figure

    return save_figure(fig, "sweep", name, out_dir=out)


def write_tables(preset: str = "smoke", out_dir: str | Path | None = None, root: str | Path | None = None,
                 methods: Iterable[str] | None = None) -> list[Path]:
    """The sweep's tables and seed figures from the records under ``root`` (default :func:`records_dir`) into
    ``out_dir`` (default ``figures/sweep/``): ``synthetic.md`` / ``.tex`` (a row per method and init),
    ``paired.md`` (pretrained minus random per method; MUVA and pi-VL minus CLIP-ReID per init: mean ± std of
    the per-seed differences, ``*`` where the mean is outside one std), ``leakage.md`` (the leakage control),
    ``ablations.md``, and the figures ``synthetic_seeds_<init>.png``, ``paired_seeds.png``,
    ``ablation_seeds.png`` (each with a PDF). Returns the paths written (tables and PNGs)."""
    from .data.protocols import synthetic_protocols
    from .runs import SWEEP_METHODS, RunNotFoundError
    from .tables import (ablation_table, collect_results, export_table, init_name, leakage_table, paired_table,
                         summarise, synthetic_table)
    from .viz import results as vres

    out = Path(out_dir) if out_dir is not None else sweep_dir()
    src = Path(root) if root is not None else records_dir()
    results = collect_results(src, preset=preset)
    if results.empty:
        raise RunNotFoundError(f"no finished {preset} runs recorded under {src}: make them with `{SWEEP_COMMAND}`")
    order = list(methods) if methods is not None else list(SWEEP_METHODS)
    main = results[results["init"].isin(["synth", "random"])]
    protocols = [p for p in synthetic_protocols() if p in set(main["protocol"])]
    paths = list(export_table(synthetic_table(summarise(main), order, extra=frozen_rows(protocols)), "synthetic",
                              f"Synthetic benchmark ({preset} preset), pretrained vs random init, mAP / R1 (%)",
                              out_dir=out))
    for init in ("synth", "random"):
        sub = main[main["init"] == init]
        if not sub.empty:
            paths.append(_figure(vres.method_seeds(sub, order, protocols, title=init_name(init)),
                                 f"synthetic_seeds_{init}", out))
    paired = paired_table(main, protocols)
    if not paired.empty:
        paths += export_table(paired, "paired", f"Paired differences over seeds ({preset} preset), mAP points",
                              out_dir=out)
        paths.append(_figure(vres.paired_seeds(main, protocols), "paired_seeds", out))
    leak = leakage_table(results, LEAKAGE_PROTOCOL, order)
    caption = f"Leakage control on {LEAKAGE_PROTOCOL} ({preset} preset)"
    if not leak.empty:
        paths += export_table(leak, "leakage", caption, out_dir=out)
    else:
        paths.append(_not_yet(out / "leakage.md", caption, "leakage-control"))
    abl_src = results[results["init"] == "synth"]
    ablation = ablation_table(abl_src)
    caption = f"Ablations from the pretrained weights ({preset} preset), mAP / R1 (%)"
    if len(ablation) and (ablation["variant"] != "full recipe").any():
        paths += export_table(ablation, "ablations", caption, out_dir=out)
        paths.append(_figure(vres.ablation_seeds(abl_src), "ablation_seeds", out))
    else:
        paths.append(_not_yet(out / "ablations.md", caption, "ablation"))
    return paths


def frozen_rows(protocols: Iterable[str]) -> list[dict[str, str]]:
    """The synthetic table's reference rows: the shipped pretrained CLIP's and random init's frozen image encoders,
    no re-ID training, on each protocol's first target (``mAP / R1`` from the shipped manifest's zero-shot
    checks, the same split the runs are evaluated on): what fine-tuning has to beat. None without a manifest."""
    from .data.protocols import get_protocol
    from .models.clip_backbone import WeightsNotFoundError, shipped_manifest
    from .tables import cell

    try:
        manifest = shipped_manifest()
    except (WeightsNotFoundError, ValueError):
        return []
    rows = []
    for key, label in (("zeroshot", "pretrained (synth), zero-shot"), ("zeroshot_random_init", "random init, zero-shot")):
        z = manifest.get(key, {})
        row = {"method": "frozen CLIP", "source": label}
        for p in protocols:
            t = z.get(get_protocol(p).target_datasets[0])
            row[p] = cell(t["reid_map"], t["reid_r1"]) if t else "-"
        rows.append(row)
    return rows


def _not_yet(path: Path, caption: str, what: str) -> Path:
    """A table file saying that no run of its part of the sweep is recorded yet (a partial sweep still writes
    every table the README shows, each saying what it holds)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{caption}\n\nNo {what} runs are recorded yet; `{SWEEP_COMMAND}` makes them.\n")
    return path

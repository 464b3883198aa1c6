"""Method runs for the notebooks: find or train the run of a config, the sweep, the real-image track and its tables.

A method run is ``runs/<protocol>/<method>/<stamp>-<preset>-s<seed>/`` (:mod:`muva_lib.train.rundir`);
its notebooks are executed into its ``notebooks/`` folder by :mod:`muva_lib.notebook_runs` (a manifest
there records each one; a notebook already done with the same parameters and source is skipped).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from .config import RunCfg, resolve
from .notebook_runs import (NotebookError, NotebookRecord, UnknownParameterError, check_notebook_parameters,
                            check_parameters, execute_notebook, list_notebooks, notebook_dir, notebook_parameters,
                            notebook_stem, output_dirs, parameter_hash, read_manifest, read_notebook,
                            unknown_notebook_globals)
from .paths import figures_root, runs_root, slug
from .train.rundir import RunDir, config_differences, find_resumable

__all__ = ["SWEEP_METHODS", "RUN_NOTEBOOKS", "RESULTS_NOTEBOOK", "QUICKSTART", "MATCH_IGNORED", "NotebookError",
           "UnknownParameterError", "RunNotFoundError", "NotebookRecord", "notebook_dir", "list_notebooks",
           "notebook_stem", "read_notebook", "notebook_parameters", "check_parameters", "unknown_notebook_globals",
           "check_notebook_parameters", "output_dirs", "parameter_hash",
           "read_manifest", "execute_notebook", "find_run", "require_run", "run_parameters", "run_method",
           "real_track", "prepare_inputs", "REAL_METHODS", "REAL_OVERRIDES", "part_phase_overrides", "part_phase_runs",
           "run_results", "results_dir", "sweep_dir", "write_sweep"]

#: the methods a sweep trains, in table order (pi-VL joins when its recipe is implemented)
SWEEP_METHODS: tuple[str, ...] = ("muva", "clipreid", "pivl")
#: notebooks executed into every method run folder
RUN_NOTEBOOKS: tuple[str, ...] = ("03_stage1_prompts", "04_stage2_training", "05_ammsa_masks")
#: the notebook that aggregates every run (executed once per sweep)
RESULTS_NOTEBOOK = "06_results"
QUICKSTART = "00_quickstart"
#: config keys a finished run may differ in and still be "the run of this config" (they do not
#: change what is trained)
MATCH_IGNORED: tuple[str, ...] = ("device", "data.num_workers", "stage2.eval_period")


class RunNotFoundError(FileNotFoundError):
    """No finished run of a config, and this preset is not trained on the spot."""



# ----------------------------------------------------------------------------- method runs

def _ignored_differences(run: RunDir, cfg: RunCfg) -> int | None:
    """How many :data:`MATCH_IGNORED` keys ``run``'s config differs from ``cfg`` in; None when it differs in
    any other key (or cannot be read)."""
    try:
        old = run.config()
        if config_differences(old, cfg, MATCH_IGNORED):
            return None
        return len(config_differences(old, cfg, ()))
    except (OSError, ValueError):
        return None


def _matches(run: RunDir, cfg: RunCfg) -> bool:
    return _ignored_differences(run, cfg) is not None


def find_run(cfg: RunCfg, root: str | Path | None = None) -> RunDir | None:
    """The finished run under ``root`` (default ``runs_root()``) whose config equals ``cfg`` apart from
    :data:`MATCH_IGNORED`, preferring one that also agrees on those keys (a run evaluated every
    ``stage2.eval_period`` epochs, when that is what ``cfg`` asks, over one evaluated only at the end),
    then the newest (None if there is none)."""
    parent = (Path(root) if root is not None else runs_root()) / slug(cfg.data.protocol) / cfg.method
    if not parent.is_dir():
        return None
    best: tuple[int, RunDir] | None = None
    for path in sorted((p for p in parent.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True):
        run = RunDir(path)
        if not (run.config_path.is_file() and run.manifest().get("status") == "finished"):
            continue
        n = _ignored_differences(run, cfg)
        if n is not None and (best is None or n < best[0]):
            best = (n, run)
            if n == 0:
                break
    return best[1] if best else None


def require_run(cfg: RunCfg, run_dir: str | Path = "", *, train: bool | None = None, progress: bool = False
                ) -> RunDir:
    """The finished run of ``cfg``: ``run_dir`` when given (it must be finished), else :func:`find_run`.

    None found: with ``train`` (default: only for the ``smoke`` preset) it is trained now with
    :func:`muva_lib.train.train` (resuming the newest unfinished run of the same config, if any);
    otherwise :class:`RunNotFoundError` names the command that produces it."""
    if run_dir:
        run = RunDir(run_dir)
        status = run.manifest().get("status")
        if status != "finished":
            raise RunNotFoundError(f"{run.root} is not a finished run (manifest status: {status or 'none'})")
        return run
    found = find_run(cfg)
    if found is not None:
        return found
    if train is None:
        train = cfg.preset == "smoke"
    if not train:
        raise RunNotFoundError(
            f"no finished {cfg.preset} run of {cfg.method} on {cfg.data.protocol} (seed {cfg.seed}) with this "
            f"config under {runs_root()}; produce it with: python -m muva_lib run --protocol '{cfg.data.protocol}' "
            f"--method {cfg.method} --preset {cfg.preset} --seeds {cfg.seed} [key=value ...]")
    from .train import train as train_run

    partial = find_resumable(cfg.data.protocol, cfg.method)
    if partial is not None and partial.config_path.is_file() and _matches(partial, cfg):
        result = train_run(cfg, run_dir=partial.root, resume=True, progress=progress)
    else:
        result = train_run(cfg, progress=progress)
    return RunDir(result.run_dir)


def run_parameters(cfg: RunCfg, run_dir: str | Path = "", overrides: Sequence[str] | str = "",
                   device: str = "auto") -> dict[str, Any]:
    """The shared notebook parameters of a run (PROTOCOL, METHOD, PRESET, SEED, DEVICE, RUN_DIR, OVERRIDES)."""
    text = overrides if isinstance(overrides, str) else " ".join(overrides)
    return {"PROTOCOL": cfg.data.protocol, "METHOD": cfg.method, "PRESET": cfg.preset, "SEED": cfg.seed,
            "DEVICE": device, "RUN_DIR": str(run_dir), "OVERRIDES": text}


def run_method(protocol: str, method: str, preset: str = "smoke", seed: int = 0, *,
               notebooks: Iterable[str] = RUN_NOTEBOOKS, overrides: Sequence[str] = (), device: str = "auto",
               force: bool = False, prepare_only: bool = False, progress: bool = True
               ) -> tuple[RunDir | None, list[NotebookRecord]]:
    """Train (or find) the run of one method / protocol / preset / seed, then execute ``notebooks`` into
    its folder. ``prepare_only``: nothing is trained or run; the notebooks are written with their
    parameters injected into the run folder, or, with no finished run yet, into
    ``<runs>/_prepared/<protocol>/<method>/<preset>-s<seed>/`` (returned run: None)."""
    cfg = resolve(method, preset, protocol, seed, list(overrides) + ([f"device={device}"] if device != "auto" else []))
    run = find_run(cfg) if prepare_only else require_run(cfg, train=True, progress=progress)
    name = f"{preset}-s{seed}" + (f"-{cfg.variant}" if cfg.variant else "")
    out = run.root if run is not None else runs_root() / "_prepared" / slug(protocol) / method / name
    params = run_parameters(cfg, out if run is not None else "", overrides, device)
    records = [execute_notebook(nb, out, params, force=force, prepare_only=prepare_only) for nb in notebooks]
    return run, records


#: the methods of the real tracklet set's rows (06_results trains what is missing with ``smoke``;
#: pi-VL's parsing maps on the real crops come from the pose backend's person mask,
#: ``parsing.source=auto`` -> ``pose``, computed once and stored)
REAL_METHODS: tuple[str, ...] = ("muva", "clipreid", "pivl")
#: the real set has 15 training identities: stage 1's PK batches of 16 x 4 cannot be filled; its part boxes
#: come from the pose backend (the synthetic backend needs a synthetic domain's ground truth)
REAL_OVERRIDES: tuple[str, ...] = ("stage1.batch_size=32", "vge.backend=pose")


def real_track(methods: Iterable[str] = REAL_METHODS, preset: str = "smoke", seed: int = 0,
               source: str = "synth-a->synth-b", *, train: bool | None = None, progress: bool = False
               ) -> dict[str, tuple[RunDir, RunDir]]:
    """The runs behind the real tracklet set's rows, per method: ``(run on source, run on real-vtest)``.

    The real crops are cut first when missing (:func:`muva_lib.data.real.ensure_real_vtest`); each
    method's ``source`` run is found (or trained, as :func:`require_run` says) and evaluated on the
    real crops once, the result written into it as ``metrics/real-vtest.json``; its run on the real
    set's own training split (protocol ``real-vtest``) is found or trained likewise. The labels are
    pseudo-identities from tracking: see ``data/real-vtest/meta.json``."""
    from .data.real import ensure_real_vtest
    from .train import evaluate_run

    ensure_real_vtest(progress=progress)
    out: dict[str, tuple[RunDir, RunDir]] = {}
    for method in methods:
        src = require_run(resolve(method, preset, source, seed), train=train, progress=progress)
        if not src.metrics_path("real-vtest").is_file():
            evaluate_run(src.root, "real-vtest", write=True)
        own = require_run(resolve(method, preset, "real-vtest", seed, REAL_OVERRIDES), train=train,
                          progress=progress)
        out[method] = (src, own)
    return out


def part_phase_overrides(part_epochs: int, preset: str = "smoke", protocol: str = "synth-a->synth-b", seed: int = 0,
                         overrides: Sequence[str] = ()) -> list[str]:
    """The overrides of a pi-VL run with ``part_epochs`` stage-1 part epochs: none beyond ``overrides`` when
    the recipe has that many, else ``stage1.part_epochs=<n>`` and ``variant=part-epochs-<n>`` (a variant,
    so the run stays out of the main tables, as an ablation does)."""
    if part_epochs < 1:
        raise ValueError(f"part epochs {part_epochs}: give 1 or more (0 epochs has no part phase to report)")
    if resolve("pivl", preset, protocol, seed, list(overrides)).stage1.part_epochs == part_epochs:
        return list(overrides)
    return [*overrides, f"stage1.part_epochs={part_epochs}", f"variant=part-epochs-{part_epochs}"]


def part_phase_runs(protocol: str = "synth-a->synth-b", part_epochs: Iterable[int] = (2, 10),
                    seeds: Iterable[int] = (0,), preset: str = "smoke", overrides: Sequence[str] = (), *,
                    train: bool | None = None, progress: bool = False) -> list[RunDir]:
    """The pi-VL runs behind the part-phase table (:func:`muva_lib.tables.part_phase_table`), one per
    part-epoch setting and seed (:func:`part_phase_overrides`), each found or trained as
    :func:`require_run` says (the recipe's own setting reuses the sweep's run when there is one)."""
    out = []
    for n in part_epochs:
        for seed in seeds:
            cfg = resolve("pivl", preset, protocol, seed, part_phase_overrides(n, preset, protocol, seed, overrides))
            out.append(require_run(cfg, train=train, progress=progress))
    return out


def prepare_inputs(cfg: RunCfg, progress: bool = False) -> None:
    """Write what runs of ``cfg`` share before they start side by side: the protocol's data (the
    synthetic domains are generated when missing), the VGE store and masks (part tokens) and what the method's
    training extras prepare (pi-VL: the parsing store) of the training items. Parallel runs then only read them."""
    from .data.protocols import build
    from .geometry import grid_for
    from .methods import training_extras
    from .train.setup import training_masks
    from .utils import resolve_device

    data = build(cfg.data.protocol, split_index=cfg.data.split_index, all_splits=cfg.data.all_splits,
                 strict=cfg.data.strict)
    device = resolve_device(cfg.device)
    if cfg.model.num_parts:
        training_masks(cfg, data.train, grid_for((cfg.data.height, cfg.data.width)), device, progress=progress)
    training_extras(cfg).prepare(cfg, data.train, device, dist=None, progress=progress, barrier=lambda: None)


def results_dir(preset: str) -> Path:
    """Where a sweep's ``06_results`` goes: ``<runs>/_results/<preset>/``."""
    return runs_root() / "_results" / preset


def sweep_dir() -> Path:
    """Where the committed sweep's tables and figures live: ``figures/sweep/`` (``$MUVA_FIGURES``)."""
    return figures_root() / "sweep"


def write_sweep(preset: str = "smoke", out_dir: str | Path | None = None, root: str | Path | None = None
                ) -> list[Path]:
    """The sweep's tables and seed-by-seed figures from every finished run of ``preset`` under ``root``
    (default ``runs_root()``) into ``out_dir`` (default :func:`sweep_dir`): ``synthetic.md`` / ``.tex``
    and ``synthetic_seeds.png`` / ``.pdf`` (the methods of :data:`SWEEP_METHODS` on every synthetic
    protocol with runs), and, when there are ablation runs, ``ablations.md`` / ``.tex`` and
    ``ablation_seeds.png`` / ``.pdf``. What ``run --all-synthetic`` writes; returns the tables' paths and
    the figures' PNG paths (each PDF beside its PNG)."""
    from .data.protocols import synthetic_protocols
    from .tables import ablation_table, collect_results, export_table, summarise, synthetic_table
    from .viz import results as vres
    from .viz import save_figure

    out = Path(out_dir) if out_dir is not None else sweep_dir()
    results = collect_results(root, preset=preset)
    methods = list(SWEEP_METHODS)
    synth = synthetic_table(summarise(results), methods)
    if synth.empty:
        raise RunNotFoundError(f"no finished {preset} runs of a synthetic protocol under {root or runs_root()}")
    paths = list(export_table(synth, "synthetic", f"Synthetic benchmark ({preset} preset), mAP / R1 (%)", out_dir=out))
    protocols = [p for p in synthetic_protocols() if p in set(results["protocol"])]
    paths.append(save_figure(vres.method_seeds(results, methods, protocols), "sweep", "synthetic_seeds", out_dir=out))
    ablation = ablation_table(results)
    if len(ablation) and (ablation["variant"] != "full recipe").any():  # a recipe row alone is no ablation table
        paths += export_table(ablation, "ablations", f"Ablations ({preset} preset), mAP / R1 (%)", out_dir=out)
        paths.append(save_figure(vres.ablation_seeds(results), "sweep", "ablation_seeds", out_dir=out))
    return paths


def run_results(preset: str = "smoke", protocol: str = "synth-a->synth-b", method: str = "muva", seed: int = 0,
                device: str = "auto", *, force: bool = True, prepare_only: bool = False) -> NotebookRecord:
    """Execute ``06_results`` once over every run of ``preset`` (its tables and figures go to
    :func:`results_dir`); ``protocol`` / ``method`` / ``seed`` pick the run of the retrieval examples.
    Re-run by default (``force``): the runs it aggregates may have changed."""
    out = results_dir(preset)
    params = {"PROTOCOL": protocol, "METHOD": method, "PRESET": preset, "SEED": seed, "DEVICE": device,
              "RUN_DIR": str(out), "OVERRIDES": ""}
    return execute_notebook(RESULTS_NOTEBOOK, out, params, force=force, prepare_only=prepare_only)

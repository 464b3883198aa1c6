"""The run folder ``runs/<protocol>/<method>/<timestamp>-<preset>-s<seed>/``: layout, manifest, logs, resume lookup.

Layout (every file written atomically by rank 0)::

    config.json              resolved RunCfg (config.save)
    manifest.json            status (running | finished | failed), protocol, method, preset, seed,
                             config hash, created / updated (ISO), git commit, versions, device,
                             world size, progress {stage, epoch}, timings (s), metrics summary, error
                             and failed_in (set-up | training) of a failed run, resumed [{at, changed}]
    logs/stage1.csv          one row per epoch: epoch, lr, loss, loss_<term>..., acc, time_s
    logs/stage2.csv          one row per epoch: epoch, lr, lr_rmp, loss, loss_<term>..., acc, memory_s, time_s
    logs/eval.csv            one row per evaluation: stage, epoch, target, mAP, rank1, rank5, rank10, mINP
    tb/stage1, tb/stage2     TensorBoard scalars (same numbers as the CSVs)
    checkpoints/last.pt      training state after the last completed epoch (resume)
    checkpoints/stage1.pt    the prompts after stage 1 (models.weights format)
    checkpoints/final.pt     the model after the last epoch, by component (models.weights format)
    cache/stage1_feats.pt    stage-1 image features {feats [M, F], labels [M], keys}
    metrics/<target>.json    final metrics on each target (fractions in [0, 1])

Every ``.pt`` under checkpoints/ carries a SHA-256 of its contents, checked on load. ``--resume`` takes
an unfinished run (a ``failed`` one only if it saved an epoch) or a finished one of the same config.
"""
from __future__ import annotations

import csv
import datetime
import io
import json
import platform
import subprocess
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..config import RunCfg, config_hash, load as load_config, save as save_config, to_dict
from ..paths import repo_root, runs_root, slug
from ..utils import atomic_write_json, atomic_write_text

__all__ = ["RunDir", "ConfigMismatchError", "NotResumableError", "config_differences", "find_resumable",
           "git_commit", "RESUME_IGNORED", "FINISHED_IGNORED"]

#: config keys that may change between a run and its resumption (they do not change the training; the
#: final evaluation, still to come, uses the new ``eval.*`` settings)
RESUME_IGNORED = ("device", "data.num_workers", "stage2.eval_period", "eval.")
#: the same for a finished run, whose metrics were computed with its own ``eval.*`` settings
FINISHED_IGNORED = ("device", "data.num_workers", "stage2.eval_period")


class ConfigMismatchError(ValueError):
    """``--resume`` found a run whose config differs; ``differences`` lists them."""

    def __init__(self, run: Path, differences: list[str], hint: str = ""):
        self.differences = differences
        super().__init__(f"refusing to resume {run}: its config differs from the requested one:\n  "
                         + "\n  ".join(differences)
                         + f"\n{hint or 'to train the requested config, start a new run (without --resume)'}")


class NotResumableError(ValueError):
    """``--resume`` was pointed at a run that failed before any epoch was saved: nothing to continue."""


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_differences(old: RunCfg, new: RunCfg, ignored: Iterable[str] = RESUME_IGNORED) -> list[str]:
    """``key: run value -> requested value`` for every differing key not in ``ignored`` (a key or a
    group prefix ending with a dot)."""
    a, b = _flatten(to_dict(old)), _flatten(to_dict(new))
    ignored = tuple(ignored)

    def skip(key: str) -> bool:
        return any(key == i or (i.endswith(".") and key.startswith(i)) for i in ignored)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and not skip(k))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys]


def git_commit() -> dict[str, Any]:
    try:
        root = repo_root()
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
        return {"commit": commit or None, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _versions() -> dict[str, str]:
    import numpy
    import open_clip
    import torch

    from .. import __version__
    return {"python": platform.python_version(), "torch": torch.__version__, "open_clip": open_clip.__version__,
            "numpy": numpy.__version__, "muva_lib": __version__}


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def write_csv_rows(path: str | Path, rows: list[Mapping[str, Any]]) -> Path:
    """Rewrite the CSV ``path`` atomically from all ``rows`` (columns in first-seen order, floats as ``.8g``)."""
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.8g}" if isinstance(v, float) else v) for k, v in r.items()})
    return atomic_write_text(path, buf.getvalue())


def tb_writer(folder: str | Path, purge_step: int | None = None) -> Any:
    """A TensorBoard SummaryWriter for ``folder`` (None, with a warning, without tensorboard). ``purge_step``
    drops events at and after that step left by an interrupted attempt."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # pragma: no cover - tensorboard is in the notebooks extra
        warnings.warn("tensorboard is not installed: no TensorBoard logs (the CSVs hold the same numbers)")
        return None
    return SummaryWriter(str(folder), purge_step=purge_step)


class RunDir:
    """One run folder (see the module docstring for its files). Only rank 0 should write."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # ------------------------------------------------------------------ paths
    config_path = property(lambda self: self.root / "config.json")
    manifest_path = property(lambda self: self.root / "manifest.json")
    last_path = property(lambda self: self.root / "checkpoints" / "last.pt")
    final_path = property(lambda self: self.root / "checkpoints" / "final.pt")
    stage1_path = property(lambda self: self.root / "checkpoints" / "stage1.pt")
    cache_path = property(lambda self: self.root / "cache" / "stage1_feats.pt")

    def log_path(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.csv"

    def metrics_path(self, target: str) -> Path:
        return self.root / "metrics" / f"{slug(target)}.json"

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, cfg: RunCfg, root: str | Path | None = None, world_size: int = 1,
               path: str | Path | None = None) -> "RunDir":
        """A new folder ``<runs>/<slug(protocol)>/<method>/<YYYYmmdd-HHMMSS>-<preset>-s<seed>`` (``-2``,
        ``-3`` ... when taken; or exactly ``path``, which must not hold a run) with config.json and a
        ``running`` manifest."""
        if path is not None:
            path = Path(path)
            if (path / "config.json").exists():
                raise FileExistsError(f"{path} already holds a run (resume it, or choose another folder)")
            path.mkdir(parents=True, exist_ok=True)
        else:
            base = Path(root) if root is not None else runs_root()
            parent = base / slug(cfg.data.protocol) / cfg.method
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            name = f"{stamp}-{cfg.preset}-s{cfg.seed}"
            path, n = parent / name, 1
            while True:
                try:
                    path.mkdir(parents=True, exist_ok=False)
                    break
                except FileExistsError:
                    n += 1
                    path = parent / f"{name}-{n}"
        run = cls(path)
        save_config(cfg, run.config_path)
        run.write_manifest({"status": "running", "protocol": cfg.data.protocol, "method": cfg.method,
                            "preset": cfg.preset, "seed": cfg.seed, "variant": cfg.variant,
                            "config_hash": config_hash(cfg),
                            "created": _now(), "git": git_commit(), "versions": _versions(),
                            "device": cfg.device, "world_size": world_size, "progress": {}, "timings": {},
                            "metrics": {}, "resumed": []})
        return run

    def config(self) -> RunCfg:
        return load_config(self.config_path)

    def check_config(self, cfg: RunCfg) -> list[str]:
        """Raise :class:`ConfigMismatchError` if ``cfg`` differs from the run's config beyond
        :data:`RESUME_IGNORED` (a finished run: :data:`FINISHED_IGNORED`); otherwise rewrite config.json of
        an unfinished run with ``cfg`` and return the ignored changes."""
        old = self.config()
        if self.manifest().get("status") == "finished":
            diffs = config_differences(old, cfg, FINISHED_IGNORED)
            if diffs:
                hint = ("the run is finished: to train the requested config, start a new run (without --resume)"
                        + ("; to score this run with other eval.* settings: python -m muva_lib eval "
                           f"--checkpoint {self.root} key=value ..." if any(d.startswith("eval.") for d in diffs)
                           else ""))
                raise ConfigMismatchError(self.root, diffs, hint)
            return []
        diffs = config_differences(old, cfg)
        if diffs:
            raise ConfigMismatchError(self.root, diffs)
        changed = config_differences(old, cfg, ignored=())
        if changed:
            save_config(cfg, self.config_path)
        return changed

    def not_resumable(self) -> str:
        """Why ``--resume`` cannot continue this run ("" when it can): a run marked ``failed`` that saved no
        epoch (its set-up or first epoch failed) has nothing to continue."""
        m = self.manifest()
        if m.get("status") == "failed" and not self.last_path.is_file():
            return (f"{self.root} failed before it saved an epoch ({m.get('error', 'no error recorded')}): "
                    "nothing to resume; fix the cause and start a new run (without --resume)")
        return ""

    def remove_partial_writes(self) -> list[str]:
        """Delete what a killed process left of an interrupted atomic write (``.<name>.<pid>.tmp`` beside
        the file it was replacing, which stays intact); returns their paths relative to the run."""
        left = sorted(p for p in self.root.rglob(".*.tmp") if p.is_file())
        for p in left:
            p.unlink()
        return [p.relative_to(self.root).as_posix() for p in left]

    # ------------------------------------------------------------------ manifest
    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_path.read_text()) if self.manifest_path.is_file() else {}

    def write_manifest(self, data: Mapping[str, Any]) -> None:
        atomic_write_json(self.manifest_path, {**data, "updated": _now()})

    def update_manifest(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into the manifest (dict values are merged one level deep)."""
        m = self.manifest()
        for k, v in fields.items():
            m[k] = {**m.get(k, {}), **v} if isinstance(v, Mapping) and isinstance(m.get(k), Mapping) else v
        self.write_manifest(m)
        return m

    # ------------------------------------------------------------------ logs
    def write_rows(self, name: str, rows: list[Mapping[str, Any]]) -> Path:
        """Rewrite ``logs/<name>.csv`` from all rows (:func:`write_csv_rows`: a resumed run's CSV is exactly
        its history, never a duplicate)."""
        return write_csv_rows(self.log_path(name), rows)

    def read_rows(self, name: str) -> list[dict[str, Any]]:
        """``logs/<name>.csv`` as a list of dicts with numbers parsed (empty if absent)."""
        path = self.log_path(name)
        if not path.is_file():
            return []
        with open(path, newline="") as fh:
            return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh)]

    def tb_writer(self, stage: str, purge_step: int | None = None) -> Any:
        """A TensorBoard SummaryWriter for ``tb/<stage>`` (:func:`tb_writer`)."""
        return tb_writer(self.root / "tb" / stage, purge_step)

    def write_metrics(self, target: str, metrics: Mapping[str, Any]) -> Path:
        return atomic_write_json(self.metrics_path(target), dict(metrics))

    def read_metrics(self) -> dict[str, dict[str, Any]]:
        """Every ``metrics/<target>.json`` keyed by its ``target`` field."""
        out = {}
        for p in sorted((self.root / "metrics").glob("*.json")):
            m = json.loads(p.read_text())
            out[m.get("target", p.stem)] = m
        return out


def _number(v: str) -> Any:
    for cast in (int, float):
        try:
            return cast(v)
        except (TypeError, ValueError):
            pass
    return v


def find_resumable(protocol: str, method: str, root: str | Path | None = None) -> RunDir | None:
    """The newest run of ``protocol`` / ``method`` whose manifest is not ``finished`` and that can be
    continued (not :meth:`RunDir.not_resumable`; None if none)."""
    parent = (Path(root) if root is not None else runs_root()) / slug(protocol) / method
    if not parent.is_dir():
        return None
    for path in sorted((p for p in parent.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True):
        run = RunDir(path)
        if run.config_path.is_file() and run.manifest().get("status") != "finished" and not run.not_resumable():
            return run
    return None

"""The notebooks' front door: one call resolves a notebook's config, device, threads, seeds and output folders,
and finds (or trains) its run on first use.

Every method notebook opens with the same parameters (PROTOCOL, METHOD, PRESET, SEED, DEVICE, RUN_DIR,
OVERRIDES, see :func:`muva_lib.runs.run_parameters`); its setup cell becomes::

    nb = muva_lib.notebook(PROTOCOL, METHOD, PRESET, SEED, overrides=OVERRIDES, device=DEVICE, run_dir=RUN_DIR,
                           name="03_stage1_prompts")
    cfg, device = nb.cfg, nb.device
    ...
    run, result = nb.run, nb.result     # found, or trained now for smoke (in an NBVAL_IGNORE_OUTPUT cell)
    nb.save_figure(fig, "stage1_curves")
    nb.save_table(table, "stage1_accuracy", caption)

The run is looked up lazily (:attr:`NotebookSetup.run`) so that the setup cell prints only what is
deterministic; the cell that first touches ``nb.run`` is the one whose output nbval ignores. Notebooks
without a run of their own (01 grounding, 02 calibration, 07 pretraining) use the same call for the
config, threads, seeds, device and output folders and simply never touch ``nb.run``: nothing is then
looked up or trained. A notebook that compares several methods (00) resolves each one's config with
:meth:`NotebookSetup.cfg_for` (same protocol, preset, seed and overrides) and finds or trains it with
:meth:`NotebookSetup.run_for`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from .config import RunCfg, resolve
from .notebook_runs import output_dirs
from .runs import require_run
from .train.api import TrainResult, load_run
from .train.rundir import RunDir
from .utils import resolve_device, seed_everything, set_threads

if TYPE_CHECKING:
    import pandas as pd

    from .extract import FeatureExtractor

__all__ = ["NotebookSetup", "notebook"]


@dataclass
class NotebookSetup:
    """What a notebook's setup cell used to compute by hand.

    ``name``: the notebook stem (``03_stage1_prompts``; "" outside a notebook); ``cfg``: the resolved config;
    ``device``: where the probes of the trained model run (``DEVICE``; training, when it happens here, follows
    ``cfg.device``); ``run_dir``: the ``RUN_DIR`` parameter ("" = the run of ``cfg``); ``fig_dir`` /
    ``table_dir``: where the notebook's figures and tables go (:func:`muva_lib.runs.output_dirs`); ``train``:
    whether a missing run is trained now (None: for the ``smoke`` preset only, as :func:`require_run` says);
    ``overrides``: the notebook's ``OVERRIDES`` as ``key=value`` strings (:meth:`cfg_for` applies them again)."""

    name: str
    cfg: RunCfg
    device: torch.device
    run_dir: str
    fig_dir: Path
    table_dir: Path
    train: bool | None = None
    progress: bool = False
    overrides: tuple[str, ...] = ()

    def cfg_for(self, method: str, extra: str | Sequence[str] = "") -> RunCfg:
        """The config of ``method`` on this notebook's protocol, preset and seed, with the notebook's overrides
        and then ``extra`` (same grammar as ``overrides``): what a notebook comparing several methods trains."""
        return resolve(method, self.cfg.preset, self.cfg.data.protocol, self.cfg.seed,
                       [*self.overrides, *_override_list(extra)])

    def run_for(self, cfg: RunCfg) -> RunDir:
        """The finished run of another config (one of :meth:`cfg_for`), found or trained as :attr:`run` is
        (``train`` / ``progress`` of this setup); ``run_dir`` is not used for it."""
        return require_run(cfg, "", train=self.train, progress=self.progress)

    @cached_property
    def run(self) -> RunDir:
        """The finished run: ``run_dir`` when given, else the newest run of ``cfg`` (trained now where
        :func:`muva_lib.runs.require_run` allows; otherwise its ``RunNotFoundError`` names the command)."""
        return require_run(self.cfg, self.run_dir, train=self.train, progress=self.progress)

    @cached_property
    def result(self) -> TrainResult:
        """The run read back: config, stage-1 / stage-2 / eval histories, final metrics, timings (no model)."""
        return load_run(self.run.root)

    def extractor(self, batch_size: int | None = None) -> FeatureExtractor:
        """The run's test-feature extractor on this notebook's device (:class:`muva_lib.extract.FeatureExtractor`)."""
        from .extract import FeatureExtractor

        return FeatureExtractor.from_run(self.run.root, device=self.device, batch_size=batch_size)

    def save_figure(self, fig: Any, name: str, **kwargs: Any) -> Path:
        """``fig`` as ``<fig_dir>/<name>.png`` and ``.pdf`` (:func:`muva_lib.viz.save_figure`); the PNG path."""
        from .viz import save_figure

        return save_figure(fig, self.name or "scratch", name, out_dir=self.fig_dir, **kwargs)

    def save_table(self, table: pd.DataFrame, name: str, caption: str = "") -> tuple[Path, Path]:
        """``table`` as ``<table_dir>/<name>.md`` (caption line + Markdown) and ``.tex``
        (:func:`muva_lib.tables.export_table`); both paths."""
        from .tables import export_table

        return export_table(table, name, caption, out_dir=self.table_dir)

    def describe(self) -> str:
        """One deterministic line (no paths, nbval compares it): method, protocol, preset, seed, variant."""
        variant = f", variant {self.cfg.variant}" if self.cfg.variant else ""
        return f"{self.cfg.method} on {self.cfg.data.protocol} ({self.cfg.preset}, seed {self.cfg.seed}{variant})"


def notebook(protocol: str, method: str, preset: str = "smoke", seed: int = 0, *,
             overrides: str | Sequence[str] = "", device: str = "auto", run_dir: str | Path = "", name: str = "",
             train: bool | None = None, progress: bool = False) -> NotebookSetup:
    """The setup of a method notebook from its parameters: the resolved config (``overrides`` in the CLI grammar:
    one space-separated string or a list of ``key=value``), threads fixed to ``cfg.threads``, Python / NumPy /
    torch seeded with ``cfg.seed``, ``device`` resolved (an unavailable CUDA raises here, before any work),
    and the output folders of notebook ``name`` (under ``run_dir`` when given). Nothing is trained or read
    until :attr:`NotebookSetup.run` is first used."""
    listed = _override_list(overrides)
    cfg = resolve(method, preset, protocol, seed, listed)
    set_threads(cfg.threads)
    seed_everything(cfg.seed)
    fig_dir, table_dir = output_dirs(str(run_dir), name or "scratch")
    return NotebookSetup(name, cfg, resolve_device(device), str(run_dir), fig_dir, table_dir, train, progress,
                         tuple(listed))


def _override_list(overrides: str | Sequence[str]) -> list[str]:
    """``key=value`` overrides as a list: one whitespace-separated string (the notebooks' ``OVERRIDES``) split,
    a sequence kept."""
    return overrides.split() if isinstance(overrides, str) else list(overrides)

"""Notebook execution: papermill into a run folder, with validated parameters, a manifest and resume.

The notebooks executed for a run land in its ``notebooks/`` folder::

    notebooks/<stem>.ipynb     the executed notebook (partially executed when a cell failed)
    notebooks/manifest.json    one entry per notebook: parameters, parameter hash, status
                               (running | done | failed | prepared), started, seconds, git commit,
                               versions, error

Notebooks are read from ``notebooks/<stem>.py`` with jupytext (the committed ``.ipynb`` plays no
part); parameter names are checked against ``papermill.inspect_notebook`` before anything runs;
a notebook already ``done`` with the same parameters and source is skipped, so an interrupted
sweep resumes where it stopped. Every notebook checks its own globals against its ``parameters``
cell with :func:`check_notebook_parameters`.
"""
from __future__ import annotations

import ast
import difflib
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .paths import figures_root, repo_root
from .train.rundir import git_commit
from .utils import atomic_write_json

__all__ = ["KERNEL", "NotebookError", "UnknownParameterError", "NotebookRecord", "notebook_dir", "list_notebooks", "notebook_stem", "read_notebook", "notebook_parameters", "check_parameters", "unknown_notebook_globals", "check_notebook_parameters", "output_dirs", "parameter_hash", "read_manifest", "execute_notebook", "drop_widget_state",
           "strip_widget_state"]

KERNEL = "python3"


class NotebookError(RuntimeError):
    """A notebook raised; the message names it and the partially executed copy."""


class UnknownParameterError(ValueError):
    """A parameter the notebook's ``parameters`` cell does not declare."""


@dataclass
class NotebookRecord:
    """One notebook execution as written to ``notebooks/manifest.json`` (``output`` is the .ipynb)."""

    notebook: str
    status: str
    parameters: dict[str, Any]
    parameter_hash: str
    output: str
    started: str = ""
    seconds: float = 0.0
    git: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    error: str = ""


# ----------------------------------------------------------------------------- notebooks

def notebook_dir() -> Path:
    """``<repo>/notebooks``: the percent-format sources."""
    return repo_root() / "notebooks"


def list_notebooks() -> list[str]:
    """Stems of every ``notebooks/NN_name.py``, in order."""
    return sorted(p.stem for p in notebook_dir().glob("[0-9][0-9]_*.py"))


def notebook_stem(name: str) -> str:
    """``"03"``, ``"03_stage1_prompts"`` or ``"stage1_prompts"`` -> ``"03_stage1_prompts"``."""
    stems = list_notebooks()
    hits = [s for s in stems if name in (s, s[:2], s[3:])]
    if len(hits) != 1:
        raise ValueError(f"unknown notebook {name!r}; notebooks: {', '.join(stems)}")
    return hits[0]


def read_notebook(stem: str) -> Any:
    """The notebook of ``notebooks/<stem>.py`` read with jupytext (an ``nbformat`` NotebookNode)."""
    import jupytext

    return jupytext.read(notebook_dir() / f"{stem}.py")


def notebook_parameters(nb: Any) -> dict[str, dict[str, Any]]:
    """Declared parameters of a notebook (``papermill.inspect_notebook``): name -> type, default, help."""
    import papermill

    return papermill.inspect_notebook(nb)


def _did_you_mean(name: str, declared: Sequence[str]) -> str:
    close = difflib.get_close_matches(name.upper(), list(declared), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _unknown(stem: str, unknown: Iterable[str], declared: Sequence[str]) -> UnknownParameterError:
    names = ", ".join(f"{n}{_did_you_mean(n, declared)}" for n in unknown)
    return UnknownParameterError(f"{stem}: unknown parameter(s) {names}; it declares {', '.join(declared)}")


def check_parameters(stem: str, nb: Any, parameters: Mapping[str, Any]) -> None:
    """Raise :class:`UnknownParameterError` for any name the ``parameters`` cell does not declare
    (papermill itself would only warn and inject it anyway)."""
    declared = notebook_parameters(nb)
    cell = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        raise UnknownParameterError(f"{stem}: no cell tagged 'parameters'")
    assigned = [t.id for node in ast.parse(cell.source).body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)]
    unparsed = [n for n in assigned if n not in declared]
    if unparsed:
        raise UnknownParameterError(f"{stem}: papermill cannot read the declaration of {', '.join(unparsed)} "
                                    "(write 'NAME: type = literal  # help', with no '=' in the help)")
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise _unknown(stem, unknown, list(declared))


def _names_bound(nb: Any) -> set[str]:
    """Every name the notebook's code cells bind anywhere (assignments, loop targets, imports, defs)."""
    names: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # a cell with IPython magics binds nothing we look for
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def unknown_notebook_globals(namespace: Mapping[str, Any], declared: Iterable[str], bound: Iterable[str] = ()
                             ) -> list[str]:
    """Names of ``namespace`` that look like parameters but are not declared: UPPER_CASE (or a declared
    name in another case, ``protocol`` for ``PROTOCOL``), not ``_private``, neither declared nor bound by
    the notebook's own code (``bound``: its constants, defined before or after the check). Sorted."""
    declared, bound = set(declared), set(bound)
    upper = {d.upper() for d in declared}
    return sorted(n for n in namespace if not n.startswith("_") and n not in declared and n not in bound
                  and (n.isupper() or n.upper() in upper))


def check_notebook_parameters(namespace: Mapping[str, Any], stem: str) -> None:
    """The notebook's own parameter check, called with ``globals()`` in the cell right after its
    ``parameters`` cell: raise :class:`UnknownParameterError` (naming the unknown names, the close
    match and the declared parameters) when a global looks like a parameter but the ``parameters``
    cell of ``notebooks/<stem>.py`` does not declare it. Papermill run directly
    (``papermill nb.ipynb out.ipynb -p PROTOCLO ...``) injects any name and only warns; this stops
    the notebook before any work. Under ``jupytext --execute`` / nbval nothing is injected, and
    the notebook's own constants are known, so a re-run in the same kernel passes too."""
    stem = notebook_stem(stem)
    nb = read_notebook(stem)
    declared = list(notebook_parameters(nb))
    unknown = unknown_notebook_globals(namespace, declared, _names_bound(nb))
    if unknown:
        raise _unknown(stem, unknown, declared)


def output_dirs(run_dir: str | Path, notebook: str) -> tuple[Path, Path]:
    """Where a notebook writes its figures and tables: ``<run_dir>/figures`` and ``<run_dir>/tables``
    when its ``RUN_DIR`` parameter is set (a run folder, the demo's ``runs/demo``), else the committed
    ``figures/<notebook>/`` and ``figures/tables/`` (``$MUVA_FIGURES``; ``make notebooks`` refreshes them)."""
    if str(run_dir):
        return Path(run_dir) / "figures", Path(run_dir) / "tables"
    return figures_root() / notebook, figures_root() / "tables"


def parameter_hash(parameters: Mapping[str, Any], source: str = "") -> str:
    """A short hash of the parameters (sorted JSON) and the notebook source."""
    blob = json.dumps(dict(parameters), sort_keys=True, default=str) + "\n" + source
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _manifest_path(out_dir: Path) -> Path:
    return out_dir / "notebooks" / "manifest.json"


def read_manifest(out_dir: str | Path) -> dict[str, dict[str, Any]]:
    """``<out_dir>/notebooks/manifest.json`` (empty when absent)."""
    path = _manifest_path(Path(out_dir))
    return json.loads(path.read_text()) if path.is_file() else {}


def _record(out_dir: Path, rec: NotebookRecord) -> None:
    manifest = read_manifest(out_dir)
    manifest[rec.notebook] = asdict(rec)
    atomic_write_json(_manifest_path(out_dir), manifest)


def _versions() -> dict[str, str]:
    import jupytext
    import papermill

    from . import __version__
    return {"papermill": papermill.__version__, "jupytext": jupytext.__version__, "muva_lib": __version__}


def execute_notebook(name: str, out_dir: str | Path, parameters: Mapping[str, Any] | None = None, *,
                     force: bool = False, prepare_only: bool = False, log_output: bool = False
                     ) -> NotebookRecord:
    """Execute ``notebooks/<stem>.py`` with papermill into ``<out_dir>/notebooks/<stem>.ipynb``.

    The kernel (``python3``) starts in the notebooks folder, as under nbval, and inherits this
    process's environment (``MUVA_RUNS`` ...). Skipped (status ``skipped``) when the manifest says
    it is done with the same parameters and source, unless ``force``; ``prepare_only`` injects the
    parameters and writes the notebook without running it. A failing cell raises
    :class:`NotebookError` naming the notebook and the partially executed copy."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    stem = notebook_stem(name)
    out_dir = Path(out_dir)
    params = dict(parameters or {})
    nb = read_notebook(stem)
    check_parameters(stem, nb, params)
    output = out_dir / "notebooks" / f"{stem}.ipynb"
    digest = parameter_hash(params, (notebook_dir() / f"{stem}.py").read_text())
    done = read_manifest(out_dir).get(stem, {})
    rec = NotebookRecord(stem, "running", params, digest, str(output), time.strftime("%Y-%m-%dT%H:%M:%S"),
                         git=git_commit(), versions=_versions())
    if (not force and not prepare_only and done.get("status") == "done" and done.get("parameter_hash") == digest
            and output.is_file()):
        return NotebookRecord(**{**done, "status": "skipped"})
    output.parent.mkdir(parents=True, exist_ok=True)
    _record(out_dir, rec)
    t0 = time.perf_counter()
    try:
        papermill.execute_notebook(nb, str(output), parameters=params, cwd=str(notebook_dir()), progress_bar=False,
                                   kernel_name=KERNEL, log_output=log_output, prepare_only=prepare_only)
    except PapermillExecutionError as exc:
        rec.status, rec.seconds = "failed", time.perf_counter() - t0
        rec.error = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"[:2000]
        _record(out_dir, rec)
        raise NotebookError(f"notebook {stem} failed in {rec.error}\n  partially executed copy: {output}") from exc
    except BaseException as exc:
        rec.status, rec.seconds, rec.error = "failed", time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"[:2000]
        _record(out_dir, rec)
        raise
    rec.status, rec.seconds = ("prepared" if prepare_only else "done"), time.perf_counter() - t0
    _record(out_dir, rec)
    return rec


def drop_widget_state(nb: dict[str, Any]) -> bool:
    """Remove the ipywidgets state an executed notebook carries in ``metadata.widgets`` (60-180 KB per explorer,
    a snapshot of the widget models that no reader of the committed notebook needs: the figure of the explorer's
    first view is an ordinary output). True when there was some."""
    return nb.get("metadata", {}).pop("widgets", None) is not None


def strip_widget_state(paths: Iterable[str | Path]) -> list[Path]:
    """:func:`drop_widget_state` on each ``.ipynb`` file, rewritten (by nbformat, as jupytext writes it) only where
    something was dropped; the files changed. ``make notebooks`` runs it after executing the notebooks."""
    import nbformat

    changed = []
    for path in map(Path, paths):
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        if drop_widget_state(nb):
            nbformat.write(nb, path)
            changed.append(path)
    return changed


if __name__ == "__main__":  # python -m muva_lib.notebook_runs strip-widgets notebooks/*.ipynb (make notebooks)
    import sys

    if len(sys.argv) < 2 or sys.argv[1] != "strip-widgets":
        sys.exit("usage: python -m muva_lib.notebook_runs strip-widgets NOTEBOOK.ipynb ...")
    for changed in strip_widget_state(sys.argv[2:]):
        print(f"{changed}: ipywidgets state dropped (metadata.widgets)")

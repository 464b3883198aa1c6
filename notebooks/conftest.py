"""How the notebooks run under pytest (``make test``: ``pytest --nbval`` with two pytest-xdist workers).

- Under pytest-xdist every notebook cell is in one unit of work, so the notebooks run on one worker, cell
  after cell in their order (06 aggregates the runs 00-05 trained, in the shared ``MUVA_RUNS``), while the
  other worker takes the unit tests one by one.
- ``MUVA_NOTEBOOK_DATA`` set (``make test`` sets it to a fresh folder): each notebook's kernel starts with
  ``MUVA_DATA`` pointing there, so the notebooks generate and write their data there and not into
  ``data/``, which the unit tests beside them check is left alone (``tests/conftest.py``). Unset: ``data/``.
"""
from __future__ import annotations

import os

import pytest

NOTEBOOK_DATA_ENV = "MUVA_NOTEBOOK_DATA"


def _is_notebook(item: pytest.Item) -> bool:
    return item.path.suffix == ".ipynb"


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """The scheduler of pytest-xdist's ``--dist load`` (one test at a time to whichever worker is nearly
    idle), except that every notebook cell belongs to one unit of work, sent first (the largest) to one
    worker in collection order. (``--dist loadgroup`` cannot do it here: it marks a group by rewriting
    ``item._nodeid``, which this pytest's ``nodeid`` no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class NotebooksTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "notebooks" if nodeid.split("::", 1)[0].endswith(".ipynb") else nodeid

    return NotebooksTogether(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    """nbval starts a notebook's kernel in its first cell's set-up: with ``MUVA_DATA`` from
    ``$MUVA_NOTEBOOK_DATA`` when that is set (the kernel keeps the environment it started with)."""
    nb_data = os.environ.get(NOTEBOOK_DATA_ENV)
    if not nb_data or not _is_notebook(item):
        yield
        return
    saved = os.environ.get("MUVA_DATA")
    os.environ["MUVA_DATA"] = nb_data
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MUVA_DATA", None)
        else:
            os.environ["MUVA_DATA"] = saved

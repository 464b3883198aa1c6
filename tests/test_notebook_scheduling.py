"""``make test`` runs on two pytest-xdist workers (``notebooks/conftest.py``): the notebooks in their order on
one worker, in one kernel each, with ``MUVA_DATA`` from ``MUVA_NOTEBOOK_DATA``; the unit tests beside them.

Checked on a small copy: two notebooks whose cells log (the kernel's parent: the worker, notebook, cell, ``MUVA_DATA``) and unit
tests that log their process, run by the real conftest under ``pytest -n 2 --nbval``."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path, name: str, cells: int, log: Path) -> None:
    nb = nbformat.v4.new_notebook()
    code = ("import os, time\n"
            f"time.sleep(0.3)  # long enough for the other worker to take unit tests meanwhile\n"
            f"open({str(log)!r}, 'a').write(f\"nb {{os.getppid()}} {{os.getpid()}} {name} {{CELL}} {{os.environ.get('MUVA_DATA')}}\\n\")")
    nb.cells = [nbformat.v4.new_code_cell(f"CELL = {i}\n{code}") for i in range(cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.slow
def test_notebooks_run_in_order_on_one_worker_with_their_own_data_root(tmp_path):
    proj, log = tmp_path / "proj", tmp_path / "log.txt"
    (proj / "notebooks").mkdir(parents=True)
    (proj / "tests").mkdir()
    shutil.copy(ROOT / "notebooks" / "conftest.py", proj / "notebooks" / "conftest.py")
    for name, cells in (("00_first", 4), ("01_second", 3)):
        _notebook(proj / "notebooks" / f"{name}.ipynb", name, cells, log)
    (proj / "tests" / "test_units.py").write_text(
        "import os, time, pytest\n"
        "@pytest.mark.parametrize('i', range(8))\n"
        "def test_unit(i):\n"
        "    time.sleep(0.2)\n"
        f"    open({str(log)!r}, 'a').write(f\"unit {{os.getpid()}} {{i}} {{os.environ.get('MUVA_DATA')}}\\n\")\n")
    nb_data = tmp_path / "nb_data"
    env = {**os.environ, "MUVA_NOTEBOOK_DATA": str(nb_data), "MUVA_DATA": str(tmp_path / "unit_data")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider",
                           "--nbval", "--nbval-current-env", "tests", "notebooks/00_first.ipynb",
                           "notebooks/01_second.ipynb"],
                          cwd=proj, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [ln.split() for ln in log.read_text().splitlines()]
    cells = [ln for ln in lines if ln[0] == "nb"]
    units = [ln for ln in lines if ln[0] == "unit"]
    # every cell ran, in the notebooks' order, each notebook in one kernel, with the notebooks' data root
    assert [(ln[3], int(ln[4])) for ln in cells] == [("00_first", i) for i in range(4)] + [("01_second", i)
                                                                                          for i in range(3)]
    assert len({ln[2] for ln in cells if ln[3] == "00_first"}) == 1
    assert len({ln[2] for ln in cells if ln[3] == "01_second"}) == 1
    assert {ln[5] for ln in cells} == {str(nb_data)}
    # the unit tests kept their own MUVA_DATA (the kernel's was set for its start only)
    assert sorted(int(ln[2]) for ln in units) == list(range(8))
    assert {ln[3] for ln in units} == {str(tmp_path / "unit_data")}
    # ... and ran beside them: the kernels' parent is the notebooks' worker, and some unit test ran in the other
    notebook_worker = {ln[1] for ln in cells}
    assert len(notebook_worker) == 1 and {ln[1] for ln in units} - notebook_worker

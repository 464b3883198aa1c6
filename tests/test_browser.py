"""A real browser: JupyterLab in headless Chromium runs a notebook, a slider moves, the figure changes.

The test starts its own JupyterLab on 127.0.0.1 (free port, random token) serving a temporary copy of
the notebook, opens it in the system Chromium through Playwright, runs all cells in the real kernel,
presses ArrowRight on one ipywidgets slider, waits for the explorer's marker ``drawn <name>=<value>``
and asserts that the figure's image changed. It saves a screenshot to ``figures/browser/explorer.png``
for the README. Skipped only where playwright or Chromium is missing (``make setup`` installs both).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from browser import (SLIDER_HANDLE, SLIDER_READOUT, chromium_page, figure_png, jupyter_lab, open_and_run_all,
                     output_area, press_right, screenshot_explorer, serve_copy, slider, wait_marker, why_no_browser)

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "figures" / "browser" / "explorer.png"


@dataclass(frozen=True)
class Explorer:
    """What the browser test opens: a notebook (None: the small one below, written into the test's
    temporary folder), the description of the slider it moves (= the name in its ``drawn`` marker)
    and how long Run All may take before the first marker shows."""

    notebook: Path | None
    slider: str
    run_timeout_s: float = 30.0


#: The notebooks under test. Pointing the test at a real explorer is one line here, e.g.
#: ``Explorer(REPO / "notebooks" / "05_ammsa_masks.ipynb", slider="block", run_timeout_s=300)``.
EXPLORERS = [Explorer(None, slider="n"),
             Explorer(REPO / "notebooks" / "01_vge_grounding.ipynb", slider="image", run_timeout_s=420)]

NO_BROWSER = why_no_browser()
#: bounded: server start (<= 60 s) + Run All + the slider's redraws and the shutdown
pytestmark = [pytest.mark.slow, pytest.mark.timeout(90 + max(e.run_timeout_s for e in EXPLORERS)),
              pytest.mark.skipif(NO_BROWSER is not None, reason=str(NO_BROWSER))]

#: A minimal explorer: an IntSlider whose callback redraws a matplotlib figure in a widgets.Output
#: and prints the marker, as the muva_lib.explore explorers do.
SMALL_EXPLORER = '''\
import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

out = widgets.Output()
n = widgets.IntSlider(value=3, min=1, max=12, description="n")


def draw(change=None):
    with out:
        out.clear_output(wait=True)
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.bar(range(n.value), range(1, n.value + 1), color="tab:blue")
        ax.set_title(f"{n.value} bars")
        display(fig)
        plt.close(fig)
        print(f"drawn n={n.value}")


n.observe(draw, names="value")
draw()
display(widgets.VBox([n, out]))
'''


def small_explorer_notebook(folder: Path) -> Path:
    """Write the minimal explorer as ``folder/explorer.ipynb`` (one code cell, the python3 kernel)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A slider that redraws a figure"),
                nbformat.v4.new_code_cell(SMALL_EXPLORER)]
    path = folder / "explorer.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("explorer", EXPLORERS, ids=lambda e: e.notebook.stem if e.notebook else "small")
def test_slider_redraws_the_figure_in_a_real_browser(explorer: Explorer, tmp_path: Path):
    served = tmp_path / "served"
    notebook = explorer.notebook or small_explorer_notebook(tmp_path)
    name = serve_copy(notebook, served)
    # the kernel imports muva_lib from this checkout, whatever folder it is started in, and writes its data,
    # runs and figures into the test's folder (never the checkout's)
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
           "MUVA_DATA": str(tmp_path / "data"), "MUVA_RUNS": str(tmp_path / "runs"),
           "MUVA_FIGURES": str(tmp_path / "figures"), "HF_HUB_OFFLINE": "1"}
    with jupyter_lab(served, tmp_path / "lab", env=env) as lab, chromium_page() as page:
        panel = open_and_run_all(page, lab, name)
        knob = slider(panel, explorer.slider)
        knob.wait_for(timeout=explorer.run_timeout_s * 1000)
        area = output_area(knob)
        start = int(knob.locator(SLIDER_READOUT).inner_text())
        wait_marker(area, explorer.slider, start, timeout_ms=explorer.run_timeout_s * 1000)
        before = figure_png(area)

        press_right(knob.locator(SLIDER_HANDLE), steps=2)
        wait_marker(area, explorer.slider, start + 2, timeout_ms=15_000)
        assert knob.locator(SLIDER_READOUT).inner_text().strip() == str(start + 2)
        after = figure_png(area)
        changed = after != before  # PNG bytes: matplotlib writes no timestamp, the same figure gives the same bytes
        assert changed, "moving the slider left the figure's image unchanged"

        if explorer.notebook is not None:  # the README shows a real explorer
            screenshot_explorer(page, knob, SCREENSHOT)
    if explorer.notebook is not None:
        assert SCREENSHOT.stat().st_size > 10_000

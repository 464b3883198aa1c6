"""Drive a real JupyterLab in headless Chromium (Playwright's Python API) from a test: server, page, widgets.

Why a helper module: the browser test is a few lines of intent (open, run, move a slider, compare the
figure); the moving parts (a private JupyterLab on 127.0.0.1, the system Chromium, the selectors of
JupyterLab 4 and ipywidgets 8, bounded waits) live here, once. The recipe and its pitfalls are in
``../shared/docs/browser.md``.

Marker convention (what an explorer prints so a browser, or a reader, knows a redraw finished): each
redraw writes the text line ``drawn <name>=<value>`` into the explorer's output, where ``<name>`` is the
``description`` of the widget that changed and ``<value>`` its new value (``drawn block=3``). See
:func:`marker`.

Everything has a deadline: the server start, every page wait, the shutdown of the server and of the
kernels it started.
"""
from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

#: Debian's ``chromium`` package: the real binary (``/usr/bin/chromium`` is a shell wrapper around it)
CHROMIUM_PATHS = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
#: flags for running as root in a container without a GPU or a large /dev/shm
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]

#: ipywidgets 8 / JupyterLab 4 selectors (checked with jupyterlab 4.6, ipywidgets 8.1)
ACTIVE_NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
KERNEL_STATUS = ".jp-StatusBar-TextItem"
SLIDER = ".widget-hslider"
SLIDER_HANDLE = ".noUi-handle"
SLIDER_READOUT = ".widget-readout"
WIDGET_OUTPUT = ".widget-output"


def marker(name: str, value: Any) -> str:
    """The text line an explorer prints after a redraw: ``drawn <name>=<value>`` (see the module doc)."""
    return f"drawn {name}={value}"


def chromium_path() -> str | None:
    """The system Chromium's binary, or None where Debian's ``chromium`` package is not installed."""
    return next((p for p in CHROMIUM_PATHS if os.access(p, os.X_OK)), None)


def why_no_browser() -> str | None:
    """Why the browser test cannot run here (None: it can): no playwright, or no system Chromium."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if chromium_path() is None:
        return (f"no Chromium at {' or '.join(CHROMIUM_PATHS)} (as root: apt-get install chromium; "
                "never `playwright install`, its download is unreachable here)")
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Lab:
    """A running private JupyterLab: its base URL, token and the folder it serves."""

    url: str
    token: str
    root: Path
    log: Path

    def notebook_url(self, name: str) -> str:
        """The URL that opens ``root/name`` in the lab, token included."""
        return f"{self.url}/lab/tree/{name}?token={self.token}"


def _children(pid: int) -> list[int]:
    """The direct child processes of ``pid`` (Linux /proc): the kernels the server started live in
    sessions of their own, so the server's process group does not reach them."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _stop(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM the server's process group (it shuts its kernels down), SIGKILL it after ``timeout`` s,
    then SIGKILL any kernel it started that is still alive."""
    kernels = _children(proc.pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.wait(timeout=timeout)
    for pid in kernels:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@contextmanager
def jupyter_lab(root: Path, scratch: Path, env: dict[str, str] | None = None,
                start_timeout: float = 60.0, stop_timeout: float = 10.0) -> Iterator[Lab]:
    """Run JupyterLab on 127.0.0.1 (free port, random token) serving ``root``, in its own process group.

    ``root``: a temporary folder holding COPIES of the notebooks (autosave writes outputs into them);
    ``scratch``: an empty temporary folder for the config, runtime, settings, IPython and matplotlib
    dirs and the server log; ``env``: extra environment for the server and its kernels. Raises
    RuntimeError with the log's tail when the server does not answer within ``start_timeout`` s.
    Stops the server and its kernels on exit (bounded by ``stop_timeout`` s per signal).
    """
    port, token = free_port(), secrets.token_hex(16)
    dirs = {k: scratch / k for k in ("config", "runtime", "ipython", "mpl", "workspaces", "settings")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    # no "news" pop-up over the notebook
    news = dirs["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text(json.dumps({"fetchNews": "false"}))
    full_env = {**os.environ, **(env or {}), "JUPYTER_CONFIG_DIR": str(dirs["config"]),
                "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]), "IPYTHONDIR": str(dirs["ipython"]),
                "MPLCONFIGDIR": str(dirs["mpl"])}
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
           f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={dirs['workspaces']}",
           f"--LabApp.user_settings_dir={dirs['settings']}"]
    log = scratch / "jupyterlab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        _wait_for_server(lab, proc, start_timeout)
        yield lab
    finally:
        _stop(proc, stop_timeout)


def _wait_for_server(lab: Lab, proc: subprocess.Popen, timeout: float) -> None:
    """Poll ``/api/status`` until the server answers; fail with the log's tail when it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{lab.url}/api/status?token={lab.token}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    tail = lab.log.read_text(errors="replace")[-2000:]
    state = f"exited with {proc.returncode}" if proc.poll() is not None else f"did not answer in {timeout:.0f} s"
    raise RuntimeError(f"JupyterLab on {lab.url} {state}; {lab.log}:\n{tail}")


def serve_copy(notebook: Path, root: Path) -> str:
    """Copy ``notebook`` into the served folder ``root`` (never serve the repository: autosave writes
    outputs) and return its name there."""
    if not notebook.is_file():
        raise FileNotFoundError(f"{notebook}: no such notebook to open in the browser")
    root.mkdir(parents=True, exist_ok=True)
    if notebook.parent.resolve() != root.resolve():
        shutil.copy2(notebook, root / notebook.name)
    return notebook.name


@contextmanager
def chromium_page(viewport: tuple[int, int] = (1280, 900), timeout_ms: float = 20_000) -> Iterator[Any]:
    """A Playwright page in headless system Chromium (``executable_path``: never Playwright's own
    download); every wait on it defaults to ``timeout_ms``. Closes the browser on exit."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        raise RuntimeError(why_no_browser())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS, timeout=timeout_ms)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()


def open_and_run_all(page: Any, lab: Lab, name: str, kernel_timeout_ms: float = 30_000) -> Any:
    """Open notebook ``name`` of ``lab``, wait for its real kernel to be idle, then Run All Cells.

    Waiting on the status bar (``<kernel name> | Idle``), not the toolbar: the toolbar reads idle
    before a kernel exists, and a Run All sent then is silently lost. Returns the notebook panel.
    """
    from playwright.sync_api import expect

    page.goto(lab.notebook_url(name))
    panel = page.locator(ACTIVE_NOTEBOOK)
    panel.wait_for()
    status = page.locator(KERNEL_STATUS).filter(has_text="| Idle").filter(has_not_text="No Kernel")
    expect(status.first).to_be_visible(timeout=kernel_timeout_ms)
    panel.click()  # the menu acts on the focused notebook
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    return panel


def slider(panel: Any, name: str) -> Any:
    """The ipywidgets slider whose description is ``name`` (the name its explorer's marker uses)."""
    label = panel.page.locator(".widget-label", has_text=re.compile(rf"^\s*{re.escape(name)}\s*$"))
    return panel.locator(SLIDER).filter(has=label).first


def output_area(knob: Any) -> Any:
    """The output area of the cell that displays the widget ``knob``: the explorer's slider, marker and
    figure are all in it (a notebook may hold several explorers, or figures outside widgets)."""
    has_class = "contains(concat(' ', normalize-space(@class), ' '), ' jp-OutputArea ')"
    return knob.locator(f"xpath=ancestor::div[{has_class}][1]")


def wait_marker(panel: Any, name: str, value: Any, timeout_ms: float) -> None:
    """Wait until a widget output inside ``panel`` shows the marker ``drawn <name>=<value>``."""
    from playwright.sync_api import expect

    line = re.compile(rf"(^|\s){re.escape(marker(name, value))}(\s|$)")  # drawn n=1 is not drawn n=10
    expect(panel.locator(WIDGET_OUTPUT).filter(has_text=line).first).to_be_visible(timeout=timeout_ms)


def figure_png(panel: Any) -> bytes:
    """The PNG bytes of the figure (the first image) in a widget output inside ``panel``."""
    src = panel.locator(f"{WIDGET_OUTPUT} img").first.get_attribute("src") or ""
    head, _, data = src.partition(",")
    if not head.startswith("data:image/png;base64"):
        raise AssertionError(f"the widget output's image is not an inline PNG (src starts {src[:40]!r})")
    return base64.b64decode(data)


def press_right(handle: Any, steps: int) -> None:
    """Move a slider ``steps`` positions right: focus its handle and press ArrowRight (one redraw each)."""
    handle.focus()
    for _ in range(steps):
        handle.press("ArrowRight")


def screenshot_explorer(page: Any, knob: Any, path: Path) -> None:
    """Save a page screenshot for the README: the left sidebar closed, the explorer (from ``knob``,
    one of its sliders, down) scrolled to the top of the notebook."""
    page.keyboard.press("Control+b")  # toggles JupyterLab's left area (the file browser)
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").wait_for(state="detached", timeout=5_000)
    knob.evaluate("e => e.scrollIntoView({block: 'start'})")
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))

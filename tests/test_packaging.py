"""One dependency list: environment.yml and the Makefile agree with pyproject.toml."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

import yaml

from muva_lib.paths import repo_root

ROOT = repo_root()


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_torch_pair_pinned_identically():
    deps = _pyproject()["project"]["dependencies"]
    pins = sorted(d for d in deps if re.match(r"torch(vision)?==", d))
    assert pins == ["torch==2.14.1", "torchvision==0.29.1"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert sorted(p for p in pip_section if p.startswith("torch")) == pins
    assert "-e .[dev]" in pip_section, "environment.yml must install the package list from pyproject"
    assert any(str(d).startswith("python=3.11") for d in env["dependencies"])


def test_dev_extra_covers_the_declared_stack():
    proj = _pyproject()["project"]
    everything = " ".join(proj["dependencies"] + sum(proj["optional-dependencies"].values(), []))
    for name in ("torch", "open_clip_torch", "transformers", "jupyterlab", "ipywidgets", "matplotlib",
                 "seaborn", "jupytext", "papermill", "nbval", "pytest", "ipykernel"):
        assert re.search(rf"(^|\s){name}\b", everything), f"{name} missing from pyproject.toml"
    assert set(proj["optional-dependencies"]["dev"][0].split("[")[1].rstrip("]").split(",")) == {
        "vge", "notebooks", "test", "pose"}


def test_browser_test_setup_agrees():
    """playwright comes with [dev] (environment.yml installs [dev]); `make setup` installs the Chromium
    binary the browser test launches."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from browser import CHROMIUM_PATHS
    finally:
        sys.path.remove(str(ROOT / "tests"))
    assert any(re.match(r"playwright\b", d) for d in _pyproject()["project"]["optional-dependencies"]["dev"])
    text = (ROOT / "Makefile").read_text()
    assert f"CHROMIUM := {CHROMIUM_PATHS[0]}" in text and "$(call debian,chromium,$(CHROMIUM)," in text
    assert "playwright install" not in text


def test_makefile_reads_torch_pins_from_pyproject():
    text = (ROOT / "Makefile").read_text()
    assert "grep -oE '\"torch(vision)?==" in text and "pyproject.toml" in text
    assert re.search(r"^demo:", text, re.M) and re.search(r"^test:", text, re.M)
    assert "--no-deps $(MEDIAPIPE)" in text and re.search(r"mediapipe==\d", (ROOT / "pyproject.toml").read_text())
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_make_test_fails_when_pytest_collects_no_tests(tmp_path):
    """The real `make test` recipe on an empty folder: pytest exits 5 and make turns it into a failure.
    ``-o <stamp>``: never (re)install the venv, even where pyproject.toml is newer than the stamp."""
    empty = tmp_path / "no_tests"
    empty.mkdir()
    proc = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "-o", ".venv/.muva-installed", "test",
                           f"TESTS={empty}", f"PY={sys.executable}"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "make test: pytest collected no tests (exit 5): failing" in proc.stderr
    assert "no tests ran" in proc.stdout and "pip install" not in proc.stdout + proc.stderr


def test_importing_the_package_loads_no_torch():
    # the package root re-exports configs and helpers; the method recipes (and torch) load on first use
    code = "import sys, muva_lib; assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'muva' in m)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr

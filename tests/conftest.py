"""Shared pytest fixtures (each one self-contained)."""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

#: the checkout's data folder: the derived stores there (grounding, parsing) are keyed by dataset/relpath,
#: so a test that grounds its own small "synth-a" into them leaves records that later runs and the
#: notebooks read for the real synth-a. Tests write into temporary folders only.
REPO_DATA = Path(__file__).resolve().parents[1] / "data"


def _data_snapshot() -> dict[str, tuple[int, int]]:
    """Size and mtime of every file of the derived stores, and the mtime of every folder up to three
    levels down (a new or removed file shows there): cheap enough to take around every test."""
    out: dict[str, tuple[int, int]] = {}
    if not REPO_DATA.is_dir():
        return out
    for top, dirs, files in os.walk(REPO_DATA):
        rel = Path(top).relative_to(REPO_DATA)
        out[str(rel) + "/"] = (0, os.stat(top).st_mtime_ns)
        if rel.parts[:1] in (("grounding",), ("parsing",)):
            for f in files:
                st = os.stat(os.path.join(top, f))
                out[str(rel / f)] = (st.st_size, st.st_mtime_ns)
        if len(rel.parts) >= 3:
            dirs[:] = []
    return out


@pytest.fixture(autouse=True)
def _tests_leave_the_checkout_data_alone(request):
    """Fail a test that wrote into the checkout's ``data/`` (the notebooks read it: ``make notebooks``, a direct
    ``pytest --nbval``). Under ``make test`` the notebooks, on the other xdist worker, write into their own data
    root instead (``notebooks/conftest.py``), so what changes here is a test's doing."""
    before = _data_snapshot()
    yield
    after = _data_snapshot()
    if after != before:
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        pytest.fail(f"the test wrote into {REPO_DATA}: {', '.join(changed[:8])}; give it a temporary folder "
                    "(root=tmp_path, or monkeypatch MUVA_DATA / MUVA_SYNTH)", pytrace=False)


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A small synthetic benchmark: three domains of 36 ids at 128x64, generated once per session.

    ``root`` holds ``synth-a/``, ``synth-b/``, ``synth-c/``; ``seed``, ``args`` (the SynthCfg
    overrides) and ``summary`` (what :func:`generate` returned) describe it.
    """
    from muva_lib.data.synthetic import generate

    root = tmp_path_factory.mktemp("synth_small")
    args = dict(ids=36, images_per_id=6, height=128, width=64, distractors=6)
    summary = generate(root, seed=0, workers=2, **args)
    return SimpleNamespace(root=root, seed=0, args=args, summary=summary)


@pytest.fixture
def fake_items(tmp_path):
    """A maker of tiny Market-style datasets: ``fake_items(n, size=(W, H), dataset="fake")`` writes
    ``n`` plain JPEGs under ``tmp_path/<dataset>/bounding_box_train/`` and returns their Items
    (pid = index). Used by the grounding tests."""
    from PIL import Image

    from muva_lib.data.types import Item

    def make(n: int, size: tuple[int, int] = (64, 128), dataset: str = "fake") -> list[Item]:
        out = []
        for i in range(n):
            rel = f"bounding_box_train/{i:04d}_c1s1_000000_00.jpg"
            path = tmp_path / dataset / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", size, ((i * 37) % 256, 120, 200)).save(path)
            out.append(Item(str(path), i, 0, dataset, rel))
        return out
    return make


#: overrides that shrink the smoke preset to seconds on ``synth_small`` (24 training ids x 6 images)
TINY_TRAIN = ("threads=1", "stage1.epochs=2", "stage2.epochs=2", "data.batch_size=16", "stage1.batch_size=16",
              "data.test_batch_size=64")


@pytest.fixture(scope="session")
def tiny_train() -> list[str]:
    """``TINY_TRAIN`` for fixtures wider than a test (``from conftest import`` is ambiguous: the notebooks
    have a conftest too)."""
    return list(TINY_TRAIN)


@pytest.fixture(scope="session")
def train_data_root(tmp_path_factory: pytest.TempPathFactory):
    """A data root shared by the training tests (the grounding store of ``synth_small`` is built once)."""
    return tmp_path_factory.mktemp("train_data")


@pytest.fixture
def train_env(synth_small, train_data_root, tmp_path, monkeypatch) -> SimpleNamespace:
    """Environment for training tests: ``MUVA_SYNTH`` -> ``synth_small``, ``MUVA_DATA`` -> a shared
    session folder, ``MUVA_RUNS`` -> this test's ``tmp_path/runs``. ``overrides`` shrink the smoke preset."""
    monkeypatch.setenv("MUVA_SYNTH", str(synth_small.root))
    monkeypatch.setenv("MUVA_DATA", str(train_data_root))
    monkeypatch.setenv("MUVA_RUNS", str(tmp_path / "runs"))
    return SimpleNamespace(runs=tmp_path / "runs", protocol="synth-a->synth-b", overrides=list(TINY_TRAIN))


#: frames of OpenCV's vtest.avi read by the real-crop fixture (a few seconds of HOG on 2 cores)
REAL_TEST_FRAMES = 120


@pytest.fixture(scope="session")
def real_vtest_small(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The real set built from the first ``REAL_TEST_FRAMES`` frames of vtest.avi, once per session:
    ``root`` (read it with ``read_dataset("real-vtest", root=root)``) and ``meta``. Skipped, with
    what to install, when OpenCV or the video is missing."""
    from muva_lib.data.real import RealCfg, build_real_set, real_vtest_missing

    missing = real_vtest_missing()
    if missing:
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("real") / "real-vtest-f120"
    meta = build_real_set(root, cfg=RealCfg(max_frames=REAL_TEST_FRAMES))
    return SimpleNamespace(root=root, meta=meta)

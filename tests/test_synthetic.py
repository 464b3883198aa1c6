"""The synthetic benchmark: layout and counts, ground truth against the files, families, domain gap, determinism, CLI."""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from muva_lib.baselines import colour_features, cosine_distance, fit_lda
from muva_lib.commands import synth as synth_cmd
from muva_lib.data.readers import read_dataset
from muva_lib.data.readers.reader import DatasetError, parse_market_name
from muva_lib.data.synthetic import (DOMAINS, PARSING_CLASSES, PART_CLASSES, PART_KEYS, SUBSETS, GtRecord, SynthCfg,
                                     SynthError, differing_parts, generate, load_gt, load_parsing, part_boxes,
                                     render_person)
from muva_lib.data.synth.domains import make_cameras
from muva_lib.data.synth.identity import sample_attributes
from muva_lib.eval.rank import evaluate_rank

NAMES = tuple(DOMAINS)
RECORD_KEYS = ["relpath", "pid", "camid", "width", "height", "boxes", "visible", "view", "caption", "attributes",
               "parsing"]


def meta_of(root: Path) -> dict:
    return json.loads((root / "meta.json").read_text())


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    synth_cmd.add_arguments(parser)
    return synth_cmd.run(parser.parse_args(list(argv)))


# ----------------------------------------------------------------------------- layout and counts

@pytest.mark.parametrize("name", NAMES)
def test_reader_reads_each_domain_with_the_planned_counts(synth_small, name):
    root = synth_small.root / name
    split = read_dataset(name, root=root)
    cfg = SynthCfg(**synth_small.args)
    n_test = cfg.num_test_ids
    counts = meta_of(root)["counts"]
    assert split.num_train_pids == cfg.ids - n_test
    assert len(split.train) == (cfg.ids - n_test) * cfg.images_per_id == counts["bounding_box_train"]["images"]
    assert len({it.pid for it in split.query}) == n_test
    assert n_test <= len(split.query) <= n_test * cfg.queries_per_id == 24
    gallery_pids = [it.pid for it in split.gallery]
    assert gallery_pids.count(0) == cfg.distractors
    assert len(split.gallery) == counts["bounding_box_test"]["images"]
    assert {it.camid for it in split.train + split.query + split.gallery} <= set(range(DOMAINS[name].cameras))
    assert {it.pid for it in split.query} == set(gallery_pids) - {0}


def test_pids_are_disjoint_across_domains_and_test_is_disjoint_from_train(synth_small):
    seen: dict[int, str] = {}
    for name in NAMES:
        gt = load_gt(synth_small.root / name)
        train = {r.pid for r in gt.values() if r.relpath.startswith("bounding_box_train/")}
        test = {r.pid for r in gt.values() if not r.relpath.startswith("bounding_box_train/")} - {0}
        assert not train & test
        for pid in train | test:
            assert pid // 1000 == DOMAINS[name].index and seen.setdefault(pid, name) == name
    assert len(seen) == 3 * synth_small.args["ids"]


@pytest.mark.parametrize("name", NAMES)
def test_every_query_has_a_gallery_match_in_another_camera(synth_small, name):
    split = read_dataset(name, root=synth_small.root / name)
    gallery = defaultdict(set)
    for it in split.gallery:
        gallery[it.pid].add(it.camid)
    assert all(gallery[q.pid] - {q.camid} for q in split.query)
    # some gallery images share the query's camera, so the Market same-camera rule matters
    assert any(q.camid in gallery[q.pid] for q in split.query)


# ----------------------------------------------------------------------------- ground truth

@pytest.mark.parametrize("name", NAMES)
def test_parts_jsonl_agrees_with_the_files(synth_small, name):
    root = synth_small.root / name
    lines = (root / "gt" / "parts.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["relpath"] for r in records] == sorted(r["relpath"] for r in records)
    on_disk = sorted(p.relative_to(root).as_posix() for sub in SUBSETS for p in (root / sub).glob("*.jpg"))
    assert [r["relpath"] for r in records] == on_disk
    h, w = synth_small.args["height"], synth_small.args["width"]
    for r in records[::7]:
        assert list(r) == RECORD_KEYS
        pid, cam = parse_market_name(r["relpath"])
        assert (r["pid"], r["camid"], r["width"], r["height"]) == (pid, cam - 1, w, h)
        assert r["parsing"] == "gt/parsing/" + r["relpath"][:-4] + ".png"
        with Image.open(root / r["relpath"]) as im:
            assert im.size == (w, h) and im.mode == "RGB"
        with Image.open(root / r["parsing"]) as pm:
            assert pm.size == (w, h) and pm.mode == "L"
        assert set(r["attributes"]) >= {"skin", "hair_colour", "upper_colour", "lower_type", "shoes_colour"}
    meta = meta_of(root)
    assert meta["parsing_classes"] == list(PARSING_CLASSES) and meta["seed"] == synth_small.seed
    assert meta["arguments"]["ids"] == synth_small.args["ids"]


@pytest.mark.parametrize("name", NAMES)
def test_boxes_and_visibility_agree_with_the_parsing_maps(synth_small, name):
    root = synth_small.root / name
    gt = load_gt(root)
    occluded = 0
    for rel, rec in list(gt.items())[::3]:
        assert isinstance(rec, GtRecord)
        parsing = load_parsing(root, rel)
        assert parsing.dtype == np.uint8 and parsing.shape == (rec.height, rec.width)
        assert parsing.max() < len(PARSING_CLASSES)
        occluded += bool((parsing == PARSING_CLASSES.index("occluder")).any())
        seen = part_boxes(parsing)  # boxes of what is left after occluders
        for part in PART_CLASSES:
            box, vis = rec.boxes[part], rec.visible[part]
            assert 0.0 <= vis <= 1.0
            assert (box is None) == (vis == 0.0) == (seen[part] is None), (rel, part)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            assert 0 <= x0 < x1 <= rec.width and 0 <= y0 < y1 <= rec.height
            sx0, sy0, sx1, sy1 = seen[part]  # occluders only remove pixels: inside the recorded box
            assert x0 <= sx0 and y0 <= sy0 and sx1 <= x1 and sy1 <= y1
            if vis == 1.0:
                assert seen[part] == box
        if rec.view == "back":  # the face is not visible from behind
            assert not (parsing == PARSING_CLASSES.index("face")).any()
        elif rec.visible["head"] == 1.0:
            assert (parsing == PARSING_CLASSES.index("face")).any()
    if DOMAINS[name].occluder_prob >= 0.2:
        assert occluded > 0


def test_head_is_above_upper_body_above_legs(synth_small):
    checked = total = 0
    for name in NAMES:
        for rec in load_gt(synth_small.root / name).values():
            total += 1
            if any(b is None for b in rec.boxes.values()):
                continue
            head, upper, legs = (rec.boxes[p] for p in ("head", "upper", "legs"))
            centre = [(b[1] + b[3]) / 2 for b in (head, upper, legs)]
            assert head[1] < upper[1] < legs[1] and centre == sorted(centre), rec.relpath
            checked += 1
    assert checked > 0.9 * total


def test_captions_describe_the_attributes_as_seen(synth_small):
    gt = load_gt(synth_small.root / "synth-a")
    views = set()
    for rec in gt.values():
        a, cap = rec.attributes, rec.caption
        views.add(rec.view)
        assert cap.startswith("a person") and f"{a['shoes_colour']} shoes" in cap and a["upper_colour"] in cap
        assert (f"{a['skin']} skin" in cap) == (rec.view != "back")
        assert (a["hat"] in cap) == (a["hat"] != "none")
    assert views == {"front", "back", "side"}


def test_occluders_are_labelled_and_lower_visibility():
    style = DOMAINS["synth-b"]
    cams = make_cameras(style, np.random.default_rng(0))
    rng = np.random.default_rng(5)
    hidden = []
    for _ in range(6):
        out = render_person(sample_attributes(rng, style.priors), style, cams[0], rng, height=128, width=64,
                            occlusion=100)
        assert (out.parsing == PARSING_CLASSES.index("occluder")).any()
        hidden.append(min(out.visible.values()))
    assert min(hidden) < 0.9


# ----------------------------------------------------------------------------- identities and families

def identities(root: Path, subset: str = "bounding_box_train") -> tuple[dict[int, dict], dict[int, dict]]:
    """pid -> attributes and pid -> family info of one subset."""
    attrs = {r.pid: r.attributes for r in load_gt(root).values() if r.relpath.startswith(subset + "/")}
    info = {int(k): v for k, v in meta_of(root)["identities"].items()}
    return attrs, {pid: info[pid] for pid in attrs}


@pytest.mark.parametrize("name", NAMES)
def test_family_members_differ_in_exactly_their_family_part(synth_small, name):
    root = synth_small.root / name
    for subset in ("bounding_box_train", "query"):
        attrs, info = identities(root, subset)
        families = defaultdict(list)
        for pid, fam in info.items():
            families[fam["family"]].append(pid)
        assert max(len(m) for m in families.values()) == SynthCfg().family_size
        assert len({tuple(sorted(a.items())) for a in attrs.values()}) == len(attrs)  # all distinct
        for members in families.values():
            part = info[members[0]]["varying_part"]
            assert part in PART_KEYS and all(info[p]["varying_part"] == part for p in members)
            for p, q in combinations(members, 2):
                assert differing_parts(attrs[p], attrs[q]) == {part}


def test_a_global_colour_feature_confuses_family_members(synth_small):
    """The nearest other identity under a global colour histogram is a family member far above chance,
    while the varying part's own crop separates family members better than the shared parts do."""
    root = synth_small.root / "synth-a"
    gt = load_gt(root)
    train = [r for r in gt.values() if r.relpath.startswith("bounding_box_train/")]
    info = {int(k): v["family"] for k, v in meta_of(root)["identities"].items()}
    feats = colour_features([root / r.relpath for r in train])
    pids = np.array([r.pid for r in train])
    fams = np.array([info[p] for p in pids])
    sim = feats @ feats.T
    sim[pids[:, None] == pids[None, :]] = -np.inf
    nearest = sim.argmax(axis=1)
    family_rate = float(np.mean(fams[nearest] == fams))
    n_ids = len(set(pids))
    chance = np.mean([(np.sum(fams[np.unique(pids, return_index=True)[1]] == f) - 1) / (n_ids - 1) for f in fams])
    assert family_rate > 3 * chance, (family_rate, chance)

    # per identity and part: the mean colour histogram of its part crops
    proto: dict[tuple[int, str], np.ndarray] = {}
    for pid in set(pids):
        recs = [r for r in train if r.pid == pid]
        for part in PART_CLASSES:
            crops = [Image.open(root / r.relpath).crop(tuple(int(v) for v in r.boxes[part]))
                     for r in recs if r.boxes[part] is not None and r.visible[part] > 0.5]
            proto[pid, part] = colour_features(crops, stripes=1).mean(axis=0)
    by_family = defaultdict(list)
    for pid in set(pids):
        by_family[info[pid]].append(pid)
    wins = total = 0
    for members in by_family.values():
        vary = meta_of(root)["identities"][str(members[0])]["varying_part"]
        for p, q in combinations(members, 2):
            d = {part: np.linalg.norm(proto[p, part] - proto[q, part]) for part in PART_CLASSES}
            wins += d[vary] > max(v for k, v in d.items() if k != vary)
            total += 1
    assert total >= 10 and wins / total >= 0.8, (wins, total)


# ----------------------------------------------------------------------------- the domain gap

def domain_features(root: Path, name: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    split = read_dataset(name, root=root / name)
    return {sub: (colour_features([it.path for it in items], size=(64, 32)), np.array([it.pid for it in items]),
                  np.array([it.camid for it in items]))
            for sub, items in (("train", split.train), ("query", split.query), ("gallery", split.gallery))}


def test_a_colour_baseline_does_clearly_worse_across_domains(synth_small):
    """Same target test set, different training domain: an LDA projection of the striped colour
    histogram fitted on the target's own training split vs on another domain's training split.

    mAP under the Market rule on every domain's query/gallery; the in-domain projection must beat
    the best cross-domain one on every target, and by 0.15 on average.
    """
    feats = {n: domain_features(synth_small.root, n) for n in NAMES}
    proj = {n: fit_lda(feats[n]["train"][0], feats[n]["train"][1]) for n in NAMES}
    m_ap = np.zeros((3, 3))  # [source, target]
    for i, src in enumerate(NAMES):
        for j, tgt in enumerate(NAMES):
            (qf, qp, qc), (gf, gp, gc) = feats[tgt]["query"], feats[tgt]["gallery"]
            m_ap[i, j] = evaluate_rank(cosine_distance(proj[src](qf), proj[src](gf)), qp, gp, qc, gc)["mAP"]
    within = np.diag(m_ap)
    cross = np.array([np.delete(m_ap[:, j], j).max() for j in range(3)])
    assert (within > cross).all() and (within - cross).mean() > 0.15, np.round(m_ap, 3)


# ----------------------------------------------------------------------------- determinism and the CLI

def test_same_seed_gives_byte_identical_files_whatever_the_workers(tmp_path):
    tiny = dict(domains=("synth-c",), ids=8, images_per_id=2, height=64, width=32, distractors=2)
    generate(tmp_path / "one", seed=3, workers=1, **tiny)
    generate(tmp_path / "two", seed=3, workers=2, **tiny)
    generate(tmp_path / "other", seed=4, workers=1, **tiny)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert len(files) > 30
    assert files == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*") if p.is_file())
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), rel
    jpgs = [rel for rel in files if rel.suffix == ".jpg"]
    other = {p.relative_to(tmp_path / "other") for p in (tmp_path / "other").rglob("*.jpg")}
    assert other and not any((tmp_path / "one" / r).read_bytes() == (tmp_path / "other" / r).read_bytes()
                             for r in set(jpgs) & other)


def test_cli_skips_a_complete_run_and_refuses_to_mix(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--domains", "synth-a", "--ids", "6", "--images-per-id", "2",
            "--height", "64", "--width", "32", "--distractors", "1", "--workers", "1", "--quiet"]
    (tmp_path / ".synth-a.partial-999999999").mkdir()  # left by a killed run
    assert cli(*args) == 0
    assert not (tmp_path / ".synth-a.partial-999999999").exists()
    stamp = (tmp_path / "synth-a" / "meta.json").stat().st_mtime_ns
    assert cli(*args) == 0
    assert "skipped" in capsys.readouterr().out
    assert (tmp_path / "synth-a" / "meta.json").stat().st_mtime_ns == stamp
    assert cli(*args, "--seed", "1") == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli(*args[:4], "synth-b", *args[4:], "--seed", "1") == 2  # another domain, other seed: same folder
    assert cli(*args, "--seed", "1", "--overwrite") == 0
    assert meta_of(tmp_path / "synth-a")["seed"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["synth-a"]
    (tmp_path / "synth-b").mkdir()  # a folder without meta.json is not ours to mix into
    with pytest.raises(SynthError, match="no readable meta.json"):
        generate(tmp_path, seed=1, domains=("synth-b",), ids=6)


# ----------------------------------------------------------------------------- killed runs

KILL_ARGS = dict(ids=60, images_per_id=6, height=64, width=32, distractors=4)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_synth_cli_killed_half_way_resumes_to_byte_identical_files(tmp_path):
    import os
    import subprocess
    import sys

    from killing import kill_when

    out = tmp_path / "killed"
    argv = ["--out", str(out), "--seed", "0", "--domains", "synth-a", "--workers", "1", "--quiet",
            *[x for k, v in KILL_ARGS.items() for x in (f"--{k.replace('_', '-')}", str(v))]]
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "MUVA_DATA": str(tmp_path / "data"), "PYTHONPATH": str(repo)}
    proc = subprocess.Popen([sys.executable, "-m", "muva_lib", "synth", *argv], cwd=repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / f".synth-a.partial-{proc.pid}" / "progress.jsonl"
    kill_when(proc, lambda: log.is_file() and log.read_bytes().count(b"\n") >= 64)
    assert not (out / "synth-a").exists()  # a domain folder appears whole or not at all
    logged = [json.loads(x)["relpath"] for x in log.read_text().splitlines()]
    assert 64 <= len(logged) and len(set(logged)) == len(logged)
    stamps = {rel: (log.parent / rel).stat().st_mtime_ns for rel in logged}
    with open(log, "ab") as fh:  # and a log line cut by the kill
        fh.write(b'{"relpath": "bounding_box_train/10')
    with pytest.warns(UserWarning, match=rf"progress\.jsonl:{len(logged) + 1}: removed a torn last line"):
        summary = generate(out, seed=0, domains=("synth-a",), **KILL_ARGS)
    assert summary["domains"]["synth-a"]["status"] == "generated"
    assert [p.name for p in out.iterdir()] == ["synth-a"]  # the partial folder became the domain
    assert {rel: (out / "synth-a" / rel).stat().st_mtime_ns for rel in logged} == stamps  # not rendered twice
    generate(tmp_path / "whole", seed=0, domains=("synth-a",), **KILL_ARGS)
    resumed, whole = _files(out / "synth-a"), _files(tmp_path / "whole" / "synth-a")
    assert len(whole) > 2 * len(logged) and resumed.keys() == whole.keys()
    assert [k for k in whole if resumed[k] != whole[k]] == []


def _killed_partial(tmp_path: Path, monkeypatch, after: int) -> Path:
    """Generate synth-a until ``after`` images are rendered, then 'die': the partial folder is left
    under a dead writer's pid."""
    from muva_lib.data.synth import generate as gen

    real, calls = gen._render_job, []

    def dying(*args):
        if len(calls) == after:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(gen, "_render_job", dying)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path, seed=0, domains=("synth-a",), ids=12, images_per_id=4, height=64, width=32,
                 distractors=2)
    monkeypatch.setattr(gen, "_render_job", real)
    (partial,) = tmp_path.glob(".synth-a.partial-*")
    return partial.rename(tmp_path / ".synth-a.partial-999999999")


def test_a_bad_progress_line_before_the_last_is_refused_naming_file_and_line(tmp_path, monkeypatch):
    partial = _killed_partial(tmp_path, monkeypatch, after=40)
    lines = (partial / "progress.jsonl").read_text().splitlines(keepends=True)
    assert len(lines) == 32  # two whole appends of 16
    lines[1] = "garbage\n"
    (partial / "progress.jsonl").write_text("".join(lines))
    with pytest.raises(SynthError, match=r"progress\.jsonl:2: not a progress record.*delete"):
        generate(tmp_path, seed=0, domains=("synth-a",), ids=12, images_per_id=4, height=64, width=32,
                 distractors=2)


def test_a_partial_folder_made_with_other_arguments_is_not_resumed(tmp_path, monkeypatch):
    _killed_partial(tmp_path, monkeypatch, after=20)
    summary = generate(tmp_path, seed=1, domains=("synth-a",), ids=12, images_per_id=4, height=64, width=32,
                       distractors=2)
    assert summary["domains"]["synth-a"]["status"] == "generated" and [p.name for p in tmp_path.iterdir()] == ["synth-a"]
    assert meta_of(tmp_path / "synth-a")["seed"] == 1


def test_a_cut_ground_truth_line_is_refused_naming_file_and_line(tmp_path):
    generate(tmp_path, seed=0, domains=("synth-c",), ids=6, images_per_id=2, height=64, width=32, distractors=1)
    parts = tmp_path / "synth-c" / "gt" / "parts.jsonl"
    data = parts.read_bytes()
    parts.write_bytes(data[:-40])
    n = data[:-40].count(b"\n") + 1
    with pytest.raises(DatasetError, match=rf"parts\.jsonl:{n}: not a ground-truth record"):
        load_gt(tmp_path / "synth-c")

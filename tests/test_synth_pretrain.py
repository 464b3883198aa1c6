"""The pretraining corpus: determinism, resume, disjoint streams and identities, exclude-style, captions, twins."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from muva_lib.__main__ import main
from muva_lib.data.errors import DatasetError
from muva_lib.data.synth import corpus as corpus_mod
from muva_lib.data.synth.captions import CAPTION_PARTS, MIN_VISIBLE, full_caption, image_captions, part_caption
from muva_lib.data.synth.nuisance import SPECS, check_exclusion, draw_nuisance, too_close
from muva_lib.data.synth.twins import attribute_key, benchmark_identities
from muva_lib.data.synthetic import (DOMAINS, CorpusCfg, GtRecord, SynthError, caption, corpus_captions, count_twins,
                                     generate_corpus, load_corpus)

TINY = CorpusCfg(ids=6, images_per_id=2, height=64, width=32, shard_size=2)
ATTRS = {"skin": "light", "hair_colour": "black", "hair_style": "short", "hat": "cap", "hat_colour": "red",
         "upper_colour": "red", "upper_pattern": "stripes", "sleeves": "short", "bag": "backpack",
         "bag_colour": "beige", "lower_type": "trousers", "lower_colour": "blue", "shoes_colour": "white"}


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "c"
    generate_corpus(root, seed=3, cfg=TINY)
    return root


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ----------------------------------------------------------------------------- files and ground truth

def test_same_seed_same_bytes_whatever_the_workers(tiny, tmp_path):
    generate_corpus(tmp_path / "again", seed=3, cfg=TINY, workers=2)
    assert files_of(tmp_path / "again") == files_of(tiny)
    assert sorted(p.name for p in tiny.iterdir()) == ["corpus.json", "shard-0000", "shard-0001", "shard-0002"]


def test_records_carry_the_benchmark_ground_truth(tiny):
    recs = load_corpus(tiny)
    assert len(recs) == 12 and len({r.relpath for r in recs}) == 12
    assert {f.name for f in fields(GtRecord)} < set(vars(recs[0]))
    for r in recs:
        assert r.pid > 2999 and r.caption == caption(r.attributes, r.view)
        with Image.open(tiny / r.relpath) as im:
            assert im.size == (32, 64)
        with Image.open(tiny / r.parsing) as pm:
            assert pm.mode == "L" and pm.size == (32, 64)
        for part, box in r.boxes.items():
            assert (box is None) == (r.visible[part] == 0.0)
            assert box is None or (0 <= box[0] < box[2] <= 32 and 0 <= box[1] < box[3] <= 64)


def test_resume_keeps_finished_shards_and_redoes_missing_and_partial_ones(tiny, tmp_path):
    root = tmp_path / "c"
    generate_corpus(root, seed=3, cfg=TINY)
    keep = {p: p.stat().st_mtime_ns for p in (root / "shard-0000").rglob("*")}
    import shutil
    shutil.rmtree(root / "shard-0001")  # killed before this shard was renamed into place
    recs = root / "shard-0002" / "records.jsonl"
    recs.write_bytes(recs.read_bytes()[:-40])  # a shard with a torn record file
    stale = root / f".shard-0001.partial-{dead_pid()}"  # what a killed writer leaves behind
    (stale / "images").mkdir(parents=True)
    (stale / "images" / "half.jpg").write_bytes(b"\xff\xd8")
    with pytest.warns(UserWarning, match="shard-0002: incomplete shard"):
        summary = generate_corpus(root, seed=3, cfg=TINY)
    assert summary["rendered_shards"] == 2 and summary["rendered_images"] == 8
    assert {p: p.stat().st_mtime_ns for p in (root / "shard-0000").rglob("*")} == keep
    assert files_of(root) == files_of(tiny)
    assert generate_corpus(root, seed=3, cfg=TINY)["rendered_shards"] == 0


def test_the_command_killed_half_way_resumes_to_byte_identical_files(tmp_path):
    import os

    from killing import kill_when

    args = ["--ids", "24", "--images-per-id", "4", "--height", "64", "--width", "32", "--shard-size", "3",
            "--workers", "1", "--quiet"]
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    out = tmp_path / "killed"
    script = ("from muva_lib.data.synthetic import CorpusCfg, generate_corpus; "  # what the command runs, started fast
              f"generate_corpus({str(out)!r}, cfg=CorpusCfg(ids=24, images_per_id=4, height=64, width=32, shard_size=3))")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=repo, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    kill_when(proc, lambda: (out / "shard-0001").is_dir())
    done = sorted(p.name for p in out.glob("shard-*"))
    assert len(done) < 8  # killed half way: some shards finished, not all
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("shard-*/**/*")}
    assert main(["synth-pretrain", "--out", str(out), *args]) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished shards untouched
    assert main(["synth-pretrain", "--out", str(tmp_path / "whole"), *args]) == 0
    assert files_of(out) == files_of(tmp_path / "whole") and not list(out.glob(".shard-*"))


def test_an_incomplete_corpus_is_not_loaded_and_other_arguments_are_refused(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    (root / "corpus.json").write_text(json.dumps(corpus_mod._fingerprint(3, TINY)))
    with pytest.raises(DatasetError, match="incomplete"):
        load_corpus(root)
    with pytest.raises(SynthError, match="other arguments"):
        generate_corpus(root, seed=4, cfg=TINY)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(SynthError, match="not empty"):
        generate_corpus(tmp_path / "other", seed=3, cfg=TINY)


# ----------------------------------------------------------------------------- no leakage

def test_corpus_streams_cannot_equal_benchmark_streams():
    from muva_lib.data.synth import generate as bench

    bench_salts = {bench._SALT_IDS, bench._SALT_CAMS, bench._SALT_PLAN, bench._SALT_IMAGE}
    assert not bench_salts & set(corpus_mod.CORPUS_SALTS)
    for seed in (0, 1, 7):
        ours = {corpus_mod._rng(*corpus_mod.corpus_key(seed, s, 100001, 0)).integers(2 ** 62) for s in corpus_mod.CORPUS_SALTS}
        theirs = {bench._rng(b, style.index, salt, 1, 0).integers(2 ** 62)
                  for b in (0, 1, 7) for style in DOMAINS.values() for salt in bench_salts}
        assert len(ours) == 4 and not ours & theirs


def test_identities_never_wear_a_benchmark_outfit():
    cfg = CorpusCfg(ids=400, family_size=2)
    people = corpus_mod.plan_identities(0, cfg)
    keys = [attribute_key(ident.attributes) for _, ident in people]
    assert len(set(keys)) == 400 and [pid for pid, _ in people] == list(range(100001, 100401))
    bench = [a for groups in benchmark_identities(0).values() for group in groups.values() for a in group]
    assert len(bench) == 3 * (180 + 20)
    assert count_twins(bench, [ident.attributes for _, ident in people]) == 0


def test_count_twins_by_hand():
    def like(**changes):
        return {**ATTRS, **changes}

    reference = [ATTRS, like(skin="dark"), like(skin="dark", lower_colour="red"), like(bag="none", bag_colour="none")]
    corpus = [like(), like(skin="tan"), like(skin="tan", upper_colour="blue")]
    assert count_twins(reference, corpus) == 1  # ATTRS itself
    assert count_twins(reference, corpus, max_diff=1) == 2  # + dark (1 key from ATTRS and from tan)
    assert count_twins(reference, corpus, max_diff=2) == 4  # + dark/red (2 from ATTRS), no bag (2 keys)
    assert count_twins([], corpus) == 0 == count_twins(reference, [])


# ----------------------------------------------------------------------------- exclude-style

def test_too_close_by_hand():
    spec = {s.name: s for s in SPECS}
    b = DOMAINS["synth-b"]
    assert too_close(spec["texture"], "foliage", b) and not too_close(spec["texture"], "tiles", b)
    assert too_close(spec["gain"], 0.80, b) and not too_close(spec["gain"], 0.78, b)  # 0.85 +- 0.06
    assert too_close(spec["horizon"], 0.3, b) and not too_close(spec["horizon"], 0.51, b)  # inside 0.3..0.5
    assert too_close(spec["cast"], (0.94, 1.0, 1.08), b) and not too_close(spec["cast"], (0.94, 1.0, 1.0), b)
    assert too_close(spec["wall"], (70, 80, 130), b) and not too_close(spec["wall"], (70, 80, 140), b)  # L2 < 40
    assert too_close(spec["jpeg_quality"], 88, b) and not too_close(spec["jpeg_quality"], 89, b)  # 85 +- 3
    assert too_close(spec["occluder"], "pole", b) and not too_close(spec["occluder"], "box", b)


@pytest.mark.parametrize("name", list(DOMAINS))
def test_exclude_style_draws_no_setting_of_that_domain(name):
    style = DOMAINS[name]
    free = [draw_nuisance(np.random.default_rng(i)) for i in range(400)]
    kept = [draw_nuisance(np.random.default_rng(i), [style]) for i in range(400)]
    for spec in SPECS:
        assert not any(too_close(spec, getattr(n, spec.name), style) for n in kept), spec.name
    close = {spec.name for spec in SPECS if any(too_close(spec, getattr(n, spec.name), style) for n in free)}
    assert {"texture", "gain", "horizon", "person_height", "occluder"} <= close  # the exclusion has work to do


def test_exclude_style_changes_only_the_nuisances(tiny, tmp_path):
    cfg = replace(TINY, exclude_style=("synth-b",))
    generate_corpus(tmp_path / "x", seed=3, cfg=cfg)
    a, b = load_corpus(tiny), load_corpus(tmp_path / "x")
    assert [(r.pid, r.attributes, r.view) for r in a] == [(r.pid, r.attributes, r.view) for r in b]
    assert [[c for c in r.captions if c.part == "full"] for r in a] == [[c for c in r.captions if c.part == "full"] for r in b]
    assert all(r.nuisance["texture"] != "foliage" for r in b) and [r.nuisance for r in a] != [r.nuisance for r in b]
    assert json.loads((tmp_path / "x" / "corpus.json").read_text())["arguments"]["exclude_style"] == ["synth-b"]


def test_excluding_every_occluder_kind_is_refused():
    with pytest.raises(ValueError, match="no occluder"):
        check_exclusion(list(DOMAINS.values()))
    with pytest.raises(ValueError, match="no occluder"):
        CorpusCfg(exclude_style=tuple(DOMAINS))
    with pytest.raises(ValueError, match="unknown exclude_style"):
        CorpusCfg(exclude_style=("synth-z",))


# ----------------------------------------------------------------------------- captions

def test_whole_person_captions_vary_in_phrasing_order_and_synonyms():
    rng = np.random.default_rng(0)
    texts = [full_caption(ATTRS, "front", rng) for _ in range(200)]
    assert len(set(texts)) > 100
    assert any(" tee" in t for t in texts) and any("t-shirt" in t for t in texts)
    assert any("rucksack" in t for t in texts) and any("pants" in t for t in texts)
    assert any(t.startswith("a red") for t in texts) and any(t.startswith("a person") for t in texts)
    assert any("; wears" in t for t in texts) and any(" wearing " in t for t in texts)
    for t in texts:  # colours stay with their garment, everything is mentioned
        assert "red" in t and "beige" in t and "blue" in t and "white" in t and "black" in t and "light" in t
    back = [full_caption(ATTRS, "back", rng) for _ in range(50)]
    assert not any("light" in t for t in back)  # no face from behind


def test_captions_fit_a_text_context_of_40():
    from open_clip.tokenizer import SimpleTokenizer

    from muva_lib.data.synth.identity import Priors, sample_attributes

    tok, rng = SimpleTokenizer(), np.random.default_rng(3)
    longest = 0
    for i in range(300):
        attrs = sample_attributes(rng, Priors(hat=0.6, bag=0.7))
        caps = image_captions(attrs, ("front", "back", "side")[i % 3], {"head": 1, "upper": 1, "legs": 1}, rng)
        longest = max([longest] + [len(tok.encode(c.text)) + 2 for c in caps])
    assert 34 <= longest <= 40


def test_part_captions_name_their_part():
    rng = np.random.default_rng(1)
    ups = {part_caption(ATTRS, "upper", rng) for _ in range(600)}
    assert "upper body: a red striped t-shirt and a beige backpack" in ups
    assert all("upper body" in t and "blue" not in t and "hair" not in t for t in ups)
    legs = {part_caption(ATTRS, "legs", rng) for _ in range(600)}
    assert "legs: blue trousers and white shoes" in legs and all("red" not in t for t in legs)
    assert all(t.count("red") == 1 and "hair" in t for t in {part_caption(ATTRS, "head", rng) for _ in range(20)})


def test_part_captions_come_at_the_documented_share_for_visible_parts():
    rng = np.random.default_rng(2)
    per_image = [image_captions(ATTRS, "side", {"head": 1.0, "upper": 0.8, "legs": MIN_VISIBLE - 0.01}, rng)
                 for _ in range(2000)]
    with_parts = [caps for caps in per_image if any(c.part != "full" for c in caps)]
    assert abs(len(with_parts) / 2000 - 0.5) < 0.04
    assert all([c.part for c in caps] == ["full", "full", "head", "upper"] for caps in with_parts)
    none = [image_captions(ATTRS, "side", {"head": 1, "upper": 1, "legs": 1}, rng, part_share=0.0) for _ in range(50)]
    assert all([c.part for c in caps] == ["full", "full"] for caps in none)


def test_corpus_captions_per_image(tiny):
    caps = corpus_captions(tiny)
    assert len(caps) == 12
    assert all(c.part in CAPTION_PARTS and c.text for cs in caps.values() for c in cs)
    assert all([c.part for c in cs][:2] == ["full", "full"] for cs in caps.values())
    meta = json.loads((tiny / "corpus.json").read_text())
    assert meta["complete"] and meta["captions"]["pairs_per_image"] >= 2


# ----------------------------------------------------------------------------- command

def test_command_prints_speed_captions_and_twins(tmp_path, capsys):
    args = ["synth-pretrain", "--out", str(tmp_path / "c"), "--ids", "3", "--images-per-id", "2", "--height", "64",
            "--width", "32", "--shard-size", "2", "--workers", "1", "--quiet", "--exclude-style", "synth-c"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "6 images of 3 identities in 2 shards" in out and "images/s" in out
    for name in DOMAINS:
        assert f"leakage {name}: 0 of 60 benchmark test identities have an attribute twin" in out
    assert main(args) == 0 and "0 shards, 2 already complete" in capsys.readouterr().out
    assert main([*args[:-1], "synth-a"]) == 2
    assert "other arguments" in capsys.readouterr().err


def test_speed_benchmark_runs_at_tiny_size(capsys):
    from muva_lib.bench import main as bench_main

    assert bench_main(["corpus", "--ids", "2", "--workers", "1"]) == 0
    assert "default corpus (24,000 images)" in capsys.readouterr().out

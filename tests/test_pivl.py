"""pi-VL: part-informed prompts, fusion heads, the two stage phases (gradient census), ablations, the CLI run,
resume, and a test-time model identical to CLIP-ReID's."""
from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import pytest
import torch

from muva_lib.config import ablation_overrides, resolve
from muva_lib.models.factory import create_model
from muva_lib.models.fusion import ResNetFusionHead, ViTFusionHead, fusion_blocks
from muva_lib.models.prompt_learner import PartPromptLearner, encode_part_text
from muva_lib.train import prepare, run_stage1, run_stage2, stage1_weights, stage2_weights
from muva_lib.train.stage1 import stage1_epoch_lr

WORDS = ("head", "upper body", "lower body", "shoes")


def _tiny_model(method="pivl", num_classes=3):
    return create_model(resolve(method, "smoke"), num_classes, device="cpu")


def test_part_prompts_identity_aware_and_shared():
    model = _tiny_model()
    pl, te = model.prompt_learner, model.text_encoder
    parts = PartPromptLearner(WORDS, te, ctx_num=4, identity=True)
    assert parts.templates[1] == "A photo of a X X X X person, upper body." and parts.ctx is None
    emb = parts(pl.ctx[torch.tensor([2, 0]), 0])  # [U=2, P=4, n, w]
    assert emb.shape == (2, 4, te.context_length, te.width)
    s = parts.prefix.shape[1]
    assert torch.equal(emb[0, 3, s:s + 4], pl.ctx[2, 0]) and torch.equal(emb[1, 0, s:s + 4], pl.ctx[0, 0])
    assert not torch.equal(parts.suffix[0], parts.suffix[1])  # the part words differ
    feats = encode_part_text(parts, pl, te, torch.tensor([2, 0]))
    assert feats.shape == (2, 4, model.image_encoder.output_dim)
    feats.sum().backward()
    assert pl.ctx.grad[1].abs().sum() == 0 and pl.ctx.grad[0].abs().sum() > 0  # only the asked identities
    shared = PartPromptLearner(WORDS, te, ctx_num=4, identity=False)
    assert shared.ctx.shape == (4, 4, te.width)
    out = encode_part_text(shared, pl, te, None)
    assert out.shape == (1, 4, model.image_encoder.output_dim)
    with pytest.raises(ValueError, match="identity labels"):
        encode_part_text(parts, pl, te, None)


def test_fusion_heads_shapes():
    assert fusion_blocks(12, 3) == (3, 7, 11) and fusion_blocks(4, 3) == (0, 2, 3)
    vit = [torch.randn(2, 48, 16, 8) for _ in range(3)]  # three blocks' patch maps at stride 16
    assert ViTFusionHead(48, 32, levels=3, dim=16, out_stride=8)(vit).shape == (2, 32, 32, 16)
    assert ViTFusionHead(48, 32, levels=3, dim=16, out_stride=16)(vit).shape == (2, 32, 16, 8)
    assert ViTFusionHead(48, 32, levels=3, dim=16, out_stride=32)(vit).shape == (2, 32, 8, 4)
    # open_clip ModifiedResNet (RN50) at 256 x 128: layer1 256 ch /4, layer2 512 /8, layer3 1024 /16
    rn = [torch.randn(2, 256, 64, 32), torch.randn(2, 512, 32, 16), torch.randn(2, 1024, 16, 8)]
    head = ResNetFusionHead(1024, dim=64)
    out = head(rn)
    assert out.shape == (2, 1024, 32, 16)
    out.mean().backward()
    assert all(p.grad is not None for p in head.parameters())
    dw = head.levels[0][0]
    assert dw.groups == dw.in_channels == dw.out_channels == 256 and dw.kernel_size == (1, 1)  # depth-wise 1x1
    with pytest.raises(ValueError, match="3 levels"):
        head(rn[:2])


def test_test_time_model_is_clipreids():
    from torch.utils.flop_counter import FlopCounterMode

    pivl, clip = _tiny_model("pivl"), _tiny_model("clipreid")
    a, b = pivl.state_dict(), clip.state_dict()
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(pivl) == count(clip)
    # no extra FLOPs at test time either, and with pi-VL's weights CLIP-ReID computes the same features
    clip.load_state_dict(a)
    images = torch.randn(2, 3, 128, 64)
    flops, feats = [], []
    for m in (pivl.eval(), clip.eval()):
        with FlopCounterMode(display=False) as counter:
            feats.append(m.encode_image_for_eval(images))
        flops.append(counter.get_total_flops())
    assert flops[0] == flops[1] > 0
    assert torch.equal(feats[0], feats[1])


def test_named_terms_and_ablations():
    cfg = resolve("pivl")
    assert (cfg.stage1.epochs, cfg.stage1.part_epochs, cfg.stage2.w_fusion) == (60, 20, 1.0)
    assert stage1_weights(cfg, 60) == {"i2t": 1.0, "t2i": 1.0} and stage1_weights(cfg, 61) == {"part_nce": 1.0}
    assert stage2_weights(cfg) == {"id": 0.25, "triplet": 1.0, "i2t": 1.0, "fusion": 1.0}
    assert stage2_weights(resolve("pivl", overrides="stage2.w_fusion=0")) == stage2_weights(resolve("clipreid"))
    smoke = resolve("pivl", "smoke")
    assert (smoke.stage1.epochs, smoke.stage1.part_epochs, smoke.data.pad) == (4, 2, 0)
    # before stage1.schedule (timm: min_lr at the last epoch): one cosine over 60 + 20 epochs, or a restart
    # for the part epochs (the rates of the current recipes: tests/test_schedules.py)
    cont = resolve("pivl", overrides="stage1.part_schedule=continue stage1.schedule=timm")
    assert stage1_epoch_lr(80, cont) == pytest.approx(1e-6)
    assert stage1_epoch_lr(60, cont) == pytest.approx(1e-6 + (3.5e-4 - 1e-6) * (1 + math.cos(math.pi * 60 / 80)) / 2)
    restart = resolve("pivl", overrides="stage1.part_schedule=restart stage1.schedule=timm")
    assert stage1_epoch_lr(60, restart) == stage1_epoch_lr(60, cont)
    assert stage1_epoch_lr(61, restart) == pytest.approx(1e-6 + (3.5e-4 - 1e-6) * (1 + math.cos(math.pi / 20)) / 2)
    assert stage1_epoch_lr(5, smoke) == pytest.approx(1e-6 + (2e-3 - 1e-6) * 3 / 4)  # smoke: the part epochs' own cosine
    clip = resolve("clipreid")
    same = {k for k in ("model", "eval") if getattr(cfg, k) == getattr(clip, k)}
    assert same == {"model", "eval"}  # pi-VL changes training only
    assert resolve("pivl", overrides=ablation_overrides("fg-vote")).parsing.vote == "foreground"


def test_part_accuracies_by_hand():
    from muva_lib.methods.pivl_training import part_accuracies

    # 2 identities x 2 parts, prompts along the 4 axes: row u, part k -> axis 2u + k
    text = torch.eye(4).view(2, 2, 4)
    e = torch.eye(4)
    # image 0 (identity 0): patch 1 of part 1 on its own prompt (axis 0): both right; patch 2 of part 2
    # on identity 1's part-2 prompt (axis 3): part right, identity wrong; patch 0 background, ignored
    # image 1 (identity 1): patch 1 of part 1 on identity 1's part-2 prompt (axis 3): both wrong; patch 2
    # of part 1 closest to its own prompt (axis 2, weight 1.0) but fairly close to both part-2
    # prompts (weight 0.6 each): right, as a part is scored by its best identity (the mean says part 2)
    mixed = e[2] + 0.6 * (e[1] + e[3])
    feats = torch.stack([torch.stack([e[2], e[0], e[3]]), torch.stack([e[1], e[3], mixed])])  # [2, 3, 4]
    parts = torch.tensor([[0, 1, 2], [0, 1, 1]])
    acc, part_acc = part_accuracies(feats, parts, text, torch.tensor([0, 1]))
    assert acc.item() == pytest.approx(2 / 4) and part_acc.item() == pytest.approx(3 / 4)
    # no part patch at all: zeros, not NaN
    acc, part_acc = part_accuracies(feats, torch.zeros_like(parts), text, torch.tensor([0, 1]))
    assert acc.item() == 0.0 and part_acc.item() == 0.0


def test_bad_parsing_vote_is_refused_before_any_parsing():
    from muva_lib.methods.pivl_training import training_parsing

    for bad, msg in (("parsing.vote=mode", "parsing.vote='mode'"), ("parsing.fg_share=0", "parsing.fg_share=0.0")):
        with pytest.raises(ValueError, match=re.escape(msg)):
            training_parsing(resolve("pivl", "smoke", overrides=bad), [], torch.device("cpu"))


def _setup(env, *extra):
    cfg = resolve("pivl", "smoke", env.protocol,
                  overrides=[*env.overrides, "stage1.epochs=1", "stage1.part_epochs=1", "stage2.epochs=1", *extra])
    return prepare(cfg, "cpu", progress=False)


def _snap(module):
    return {n: p.detach().clone() for n, p in module.state_dict().items()}


def _changed(before, module):
    return {n for n, v in module.state_dict().items() if not torch.equal(before[n], v)}


@pytest.mark.slow
def test_stage1_part_phase_moves_only_prompts(train_env):
    setup = _setup(train_env)
    assert setup.parsing is not None and setup.aux.grouping.parts == ("head", "upper", "lower", "shoes")
    assert setup.aux.part_prompts.identity and setup.aux.fusion is not None
    before, aux_before = _snap(setup.model), _snap(setup.aux)
    run_stage1(setup)
    assert _changed(before, setup.model) == {"prompt_learner.ctx"} and not _changed(aux_before, setup.aux)
    rows = setup.history["stage1"]
    assert [r["epoch"] for r in rows] == [1, 2] and "loss_i2t" in rows[0] and "loss_part_nce" in rows[1]
    assert rows[1]["loss_part_nce"] > 0
    # a patch whose best text is its (identity, part) has its part right too
    assert 0.0 <= rows[1]["acc"] <= rows[1]["part_acc"] <= 1.0

    shared = _setup(train_env, "stage1.part_identity=false", "stage2.w_fusion=0")
    assert shared.aux.fusion is None and shared.aux.part_prompts.ctx is not None
    ctx0 = shared.aux.part_prompts.ctx.detach().clone()
    run_stage1(shared)
    assert not torch.equal(ctx0, shared.aux.part_prompts.ctx)  # the shared part context learned


@pytest.mark.slow
def test_stage2_fusion_census(train_env):
    setup = _setup(train_env)
    model, aux = setup.model, setup.aux
    before, aux_before = _snap(model), _snap(aux)
    run_stage2(setup)
    changed = _changed(before, model)
    never = {n for n in before if n.startswith(("text_encoder.", "prompt_learner."))}
    never |= {"image_encoder.visual.conv1.weight", "bnneck.bias", "cls_bnneck.bias"}
    assert not changed & never
    assert {n for n in _changed(aux_before, aux)} == {n for n in aux_before if n.startswith("fusion.")}
    row = setup.history["stage2"][0]
    assert {"loss_id", "loss_triplet", "loss_i2t", "loss_fusion"} <= set(row) and row["loss_fusion"] > 0


class Killed(Exception):
    pass


def test_cli_names_a_missing_parsing_source(train_env, capsys):
    from muva_lib.__main__ import main

    argv = ["train", "--protocol", train_env.protocol, "--method", "pivl", "--preset", "smoke", "--no-progress",
            *train_env.overrides, "parsing.source=png"]
    assert main(argv) == 2
    assert "parsing.png_root" in capsys.readouterr().err


@pytest.mark.slow
def test_pivl_trains_on_the_real_crops_with_no_parsing_flag(real_vtest_small, tmp_path, monkeypatch, capsys):
    """``train --protocol real-vtest --method pivl``: parsing.source=auto takes the pose backend's person
    mask, and both stages run (the real set of the first 120 frames: 3 training ids, 33 crops)."""
    from muva_lib.__main__ import main
    from muva_lib.grounding.backends.pose import pose_missing

    if pose_missing():
        pytest.skip(pose_missing())
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "real-vtest").symlink_to(real_vtest_small.root)
    monkeypatch.setenv("MUVA_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MUVA_RUNS", str(tmp_path / "runs"))
    argv = ["train", "--protocol", "real-vtest", "--method", "pivl", "--preset", "smoke", "--no-progress",
            "threads=1", "stage1.epochs=1", "stage1.part_epochs=1", "stage2.epochs=1", "data.batch_size=8",
            "data.test_batch_size=64"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    run = Path(next(ln for ln in out.splitlines() if ln.startswith("run folder: ")).split(": ", 1)[1])
    assert "stage1: 2 epochs" in out and "fusion" in out and "| real-vtest" in out
    assert (tmp_path / "data" / "parsing" / "real-vtest" / "pose-r1_64x32" / "meta.json").is_file()
    part = [r for r in csv.DictReader(open(run / "logs" / "stage1.csv")) if r["loss_part_nce"]]
    assert len(part) == 1 and float(part[0]["part_acc_chance"]) == pytest.approx(1 / 3)  # head, upper, lower
    assert 0 <= json.loads((run / "metrics" / "real-vtest.json").read_text())["mAP"] <= 1


@pytest.mark.slow
def test_cli_run_resume_and_clipreid_checkpoint(train_env, capsys):
    from muva_lib.__main__ import main
    from muva_lib.models.weights import load_checkpoint
    from muva_lib.train import LambdaCallback, find_resumable, train
    from muva_lib.train.train_state import load_train_state

    argv = ["train", "--protocol", train_env.protocol, "--method", "pivl", "--preset", "smoke", "--no-progress",
            *train_env.overrides, "stage1.part_epochs=1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    run = Path(next(ln for ln in out.splitlines() if ln.startswith("run folder: ")).split(": ", 1)[1])
    assert run.parent == train_env.runs / "synth-a-to-synth-b" / "pivl"
    assert "stage1: 3 epochs" in out and "fusion" in out and "| synth-b" in out
    assert (run / "cache" / "stage1_patches.pt").is_file()
    assert json.loads((run / "config.json").read_text())["parsing"]["source"] == "auto"
    metrics = json.loads((run / "metrics" / "synth-b.json").read_text())
    assert 0 <= metrics["mAP"] <= 1
    # the test-time model of a pi-VL run is CLIP-ReID's: its checkpoint loads into that architecture
    cfg = resolve("clipreid", "smoke", train_env.protocol, overrides=train_env.overrides)
    clip = create_model(cfg, 24, device="cpu")
    load_checkpoint(clip, run / "checkpoints" / "final.pt")
    assert main(["eval", "--checkpoint", str(run)]) == 0

    # killed in the part phase, resumed: the same final weights as the CLI run (the aux state is in last.pt)
    pcfg = resolve("pivl", "smoke", train_env.protocol, overrides=[*train_env.overrides, "stage1.part_epochs=1"])

    def kill(stage, epoch, record):
        if (stage, epoch) == ("stage1", 3):
            raise Killed()
    with pytest.raises(Killed):
        train(pcfg, callbacks=[LambdaCallback(on_epoch_end=kill)], progress=False)
    part = find_resumable(pcfg.data.protocol, "pivl")
    assert "aux" in load_train_state(part.last_path)["extra"]
    resumed = train(pcfg, resume=True, progress=False)
    assert resumed.metrics["synth-b"]["mAP"] == metrics["mAP"]
    a = torch.load(run / "checkpoints" / "final.pt", weights_only=True)["state"]
    b = torch.load(resumed.run_dir / "checkpoints" / "final.pt", weights_only=True)["state"]
    assert all(torch.equal(a[c][k], b[c][k]) for c in a for k in a[c])


# ----------------------------------------------------------------------------- the part-phase table (no training)

PROTO = "synth-a->synth-b"


def _fake_pivl_run(root, seed, overrides, last, mAP):
    """A finished pi-VL run folder made by hand: config, stage-1 log (identity epochs, then part epochs
    whose last row is ``last``; a decoy part epoch before it) and the target's metrics."""
    from muva_lib.train.rundir import RunDir

    cfg = resolve("pivl", "smoke", PROTO, seed, overrides)
    run = RunDir.create(cfg, root)
    s1 = cfg.stage1
    rows = [{"epoch": e, "lr": 1e-3, "loss": 5.0, "loss_i2t": 3.0, "acc": 0.5, "time_s": 1.0}
            for e in range(1, s1.epochs + 1)]
    decoy = {"acc": 0.9, "part_acc": 0.9, "acc_chance": 0.9, "part_acc_chance": 0.9}
    rows += [{"epoch": s1.epochs + k, "lr": 1e-3, "loss": 3.7, "loss_part_nce": 3.7, "time_s": 1.0,
              **(last if k == s1.part_epochs else decoy)} for k in range(1, s1.part_epochs + 1)]
    run.write_rows("stage1", rows)
    run.write_metrics("synth-b", {"target": "synth-b", "mAP": mAP, "rank1": 0.1})
    run.update_manifest(status="finished")
    return run


@pytest.fixture
def part_phase_runs_on_disk(tmp_path, monkeypatch):
    """Two settings x two seeds: the recipe's 2 part epochs (plain runs, as the sweep makes them) and 10
    (the variant); seed 1 of 10 logged no chance levels (a run from before they were logged)."""
    monkeypatch.setenv("MUVA_RUNS", str(tmp_path / "runs"))
    root = tmp_path / "runs"
    ten = ["stage1.part_epochs=10", "variant=part-epochs-10"]
    chance = {"acc_chance": 1 / 64, "part_acc_chance": 0.25}
    return [_fake_pivl_run(root, 0, [], {"acc": 0.006, "part_acc": 0.24, **chance, "lr": 5e-4}, 0.11),
            _fake_pivl_run(root, 1, [], {"acc": 0.0, "part_acc": 0.26, **chance, "lr": 5e-4}, 0.10),
            _fake_pivl_run(root, 0, ten, {"acc": 0.03, "part_acc": 0.35, **chance, "lr": 1e-5}, 0.102),
            _fake_pivl_run(root, 1, ten, {"acc": 0.02, "part_acc": 0.33, "lr": 1e-5}, 0.098)]


def test_part_phase_table_from_run_folders(part_phase_runs_on_disk):
    from muva_lib.tables import part_phase_row, part_phase_table, to_markdown

    runs = part_phase_runs_on_disk
    rows = [part_phase_row(r.root) for r in reversed(runs)]  # the table orders them itself
    assert rows[-1] == {"part_epochs": 2, "seed": 0, "lr": 5e-4, "acc": 0.006, "acc_chance": 1 / 64,
                        "part_acc": 0.24, "part_acc_chance": 0.25, "mAP": 0.11, "target": "synth-b",
                        "run": str(runs[0].root)}
    table = part_phase_table(rows)
    assert list(table.columns) == ["part epochs", "seed", "last part lr", "acc", "chance (acc)", "part_acc",
                                   "chance (part_acc)", "mAP (synth-b)", "run"]
    cells = table.drop(columns="run").values.tolist()
    assert cells == [
        ["2", "0", "5.0e-04", "0.006", "0.016", "0.240", "0.250", "11.0"],
        ["2", "1", "5.0e-04", "0.000", "0.016", "0.260", "0.250", "10.0"],  # a 0 read back from the CSV
        ["2", "mean of 2", "5.0e-04", "0.003", "0.016", "0.250", "0.250", "10.5"],
        ["10", "0", "1.0e-05", "0.030", "0.016", "0.350", "0.250", "10.2"],
        ["10", "1", "1.0e-05", "0.020", "-", "0.330", "-", "9.8"],
        ["10", "mean of 2", "1.0e-05", "0.025", "-", "0.340", "-", "10.0"]]
    assert table["run"].tolist()[:2] == [r.root.relative_to(r.root.parents[2]).as_posix() for r in runs[:2]]
    assert to_markdown(table).count("\n") == 7


def test_part_phase_row_refuses_a_run_without_a_part_phase(tmp_path):
    from muva_lib.tables import part_phase_row

    run = _fake_pivl_run(tmp_path, 0, [], {"acc": 0.1, "part_acc": 0.2}, 0.1)
    rows = run.read_rows("stage1")
    run.write_rows("stage1", rows[:-1])  # killed before its last part epoch
    with pytest.raises(ValueError, match=r"stage1\.csv: no part epoch \d+"):
        part_phase_row(run.root)


def test_part_phase_runs_find_the_recipe_and_the_variant(part_phase_runs_on_disk):
    from muva_lib.runs import RunNotFoundError, part_phase_overrides, part_phase_runs

    runs = part_phase_runs_on_disk
    assert part_phase_overrides(2) == []  # the recipe's setting: the sweep's run
    assert part_phase_overrides(10, overrides=["seed=3"]) == ["seed=3", "stage1.part_epochs=10",
                                                              "variant=part-epochs-10"]
    with pytest.raises(ValueError, match="part epochs 0"):
        part_phase_overrides(0)
    found = part_phase_runs(PROTO, (2, 10), (0, 1), train=False)
    assert [r.root for r in found] == [r.root for r in runs]
    with pytest.raises(RunNotFoundError, match="seed 2"):
        part_phase_runs(PROTO, (10,), (2,), train=False)


def test_pivl_part_phase_command(part_phase_runs_on_disk, tmp_path, capsys):
    import argparse

    from muva_lib.__main__ import main
    from muva_lib.commands import pivl_part_phase as cmd

    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    args = parser.parse_args(["--seeds", "0", "1", "stage1.lr=1e-3", "--part-epochs", "2", "2", "x=1"])
    assert cmd.split_arguments(args) == ([0, 1], [2], ["stage1.lr=1e-3", "x=1"])
    assert parser.parse_args([]).part_epochs == ["2", "10"] and parser.parse_args([]).train is None

    out = tmp_path / "tables"
    argv = ["pivl-part-phase", "--protocol", PROTO, "--seeds", "0", "1", "--part-epochs", "2", "10", "--no-train",
            "--out-dir", str(out)]
    assert main(argv) == 0
    md = (out / "pivl_part_phase.md").read_text()
    assert md.startswith("pi-VL stage-1 part phase on synth-a->synth-b (smoke preset)")
    assert "| 10          | mean of 2 | 1.0e-05" in md and (out / "pivl_part_phase.tex").is_file()
    assert md.split("\n\n", 1)[1].strip() in capsys.readouterr().out  # the table, printed too
    assert main([*argv[:-2], "--seeds", "7", "--out-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no finished smoke run of pivl on synth-a->synth-b (seed 7)")
    assert not (tmp_path / "none").exists()
    assert main(["pivl-part-phase", "--part-epochs", "two", "--no-train"]) == 2
    assert "--part-epochs two: give whole numbers" in capsys.readouterr().err

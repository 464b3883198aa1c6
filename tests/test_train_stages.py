"""Gradient census of both stages on real batches, text features once per identity, named loss terms."""
from __future__ import annotations

import pytest
import torch

from muva_lib.config import resolve
from muva_lib.train import load_or_compute_cache, prepare, run_stage1, run_stage2, stage1_weights, stage2_weights
from muva_lib.train.stage1 import make_stage1_sampler, stage1_batches, stage1_step


def _setup(env, method, *extra):
    overrides = [*env.overrides, "stage1.epochs=1", "stage2.epochs=1", *extra]
    cfg = resolve(method, "smoke", env.protocol, overrides=overrides)
    return prepare(cfg, "cpu", progress=False)


def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.state_dict().items()}


def _changed(before, model):
    return {n for n, v in model.state_dict().items() if not torch.equal(before[n], v)}


@pytest.mark.parametrize("method", ["muva", "clipreid"])
def test_stage1_moves_only_the_prompt_context(train_env, method):
    setup = _setup(train_env, method)
    before = _snapshot(setup.model)
    run_stage1(setup)
    assert _changed(before, setup.model) == {"prompt_learner.ctx"}  # no BN statistics either
    assert len(setup.history["stage1"]) == 1 and "loss" in setup.history["stage1"][0]


@pytest.mark.parametrize("method", ["muva", "clipreid"])
def test_stage2_census(train_env, method):
    setup = _setup(train_env, method)
    model = setup.model
    before = _snapshot(model)
    run_stage2(setup)
    changed = _changed(before, model)
    never = {n for n in before if n.startswith(("text_encoder.", "prompt_learner."))}
    never |= {"image_encoder.visual.conv1.weight", "bnneck.bias", "cls_bnneck.bias"} & set(before)
    assert not changed & never, f"frozen tensors moved: {sorted(changed & never)[:5]}"
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters()} - never
    assert trainable <= changed, f"never updated: {sorted(trainable - changed)[:5]}"
    if method == "muva":
        assert any(n.startswith("image_encoder.rmp.") for n in changed)
        row = setup.history["stage2"][0]
        assert row["lr_rmp"] == pytest.approx(10 * row["lr"])
        assert {"loss_id", "loss_memory", "loss_i2t", "loss_mask_bce", "loss_mask_dice", "memory_s"} <= set(row)
    else:
        assert {"loss_id", "loss_triplet", "loss_i2t"} <= set(setup.history["stage2"][0])
        assert "cls_classifier.weight" in changed and "cls_bnneck.weight" in changed


def test_text_encoder_runs_once_per_distinct_identity(train_env):
    setup = _setup(train_env, "muva")
    model, cfg = setup.model, setup.cfg
    cache = load_or_compute_cache(setup)
    protos = torch.nn.functional.normalize(torch.randn(setup.data.num_classes, cache.feats.shape[1]), dim=1)
    rows = []
    hook = model.text_encoder.register_forward_hook(lambda mod, args, out: rows.append(args[0].shape[0]))
    sampler = make_stage1_sampler(cfg, cache.labels)
    sampler.set_epoch(1)
    batches = stage1_batches(sampler)
    for idx in batches:
        stage1_step(model, cache, protos, cfg, idx)
    hook.remove()
    prompts = 1 + model.num_parts
    assert len(rows) == len(batches)  # one text-encoder call per batch
    assert rows == [len(torch.unique(cache.labels[idx])) * prompts for idx in batches]
    assert all(len(idx) == cfg.data.num_instances * r // prompts for idx, r in zip(batches, rows))  # 4 repeats


def test_named_loss_terms_follow_the_config():
    assert stage1_weights(resolve("muva")) == {"cluster_nce": 1.0}
    assert stage1_weights(resolve("clipreid")) == {"i2t": 1.0, "t2i": 1.0}
    assert stage2_weights(resolve("muva")) == {"id": 1.0, "i2t": 1.0, "memory": 1.0, "mask_bce": 1.0, "mask_dice": 1.0}
    assert stage2_weights(resolve("clipreid")) == {"id": 0.25, "triplet": 1.0, "i2t": 1.0}
    assert stage2_weights(resolve("muva", overrides="stage2.mask_loss=mse stage2.w_memory=0")) == {
        "id": 1.0, "i2t": 1.0, "mask_mse": 1.0}
    with pytest.raises(ValueError, match="part tokens"):
        stage2_weights(resolve("clipreid", overrides="stage2.w_mask=1"))
    assert stage2_weights(resolve("pivl")) == {"id": 0.25, "triplet": 1.0, "i2t": 1.0, "fusion": 1.0}


def test_method_recipes_for_test_features_and_augmentation():
    muva, clipreid = resolve("muva"), resolve("clipreid")
    assert (muva.eval.after_bn, muva.eval.with_hidden, muva.model.cls_head) == (True, False, False)
    assert (clipreid.eval.after_bn, clipreid.eval.with_hidden, clipreid.model.cls_head) == (False, True, True)
    assert (muva.data.pad, muva.data.erase_prob) == (0, 0.0)  # MUVA: flip only (spec 1.5)
    assert (clipreid.data.pad, clipreid.data.erase_prob) == (10, 0.5)  # CLIP-ReID's own recipe
    smoke = resolve("clipreid", "smoke", overrides="data.erase_prob=0.25")
    assert (smoke.data.pad, smoke.data.erase_prob) == (0, 0.25)  # smoke: flip only, unless asked


def test_train_benchmark_runs(capsys):
    from muva_lib.train import bench_step as bench

    assert bench.main(["--size", "64x32", "--batch", "8", "--ids", "4", "--images-per-id", "4", "--context", "16",
                       "--steps", "1", "--repeats", "1", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("stage-1 epoch") and "ratio" in lines[1]
    assert lines[2].startswith("stage-2 step: MUVA") and lines[2].endswith("x")

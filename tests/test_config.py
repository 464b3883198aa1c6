"""Config resolution, overrides, round trips and errors."""
from __future__ import annotations

import json

import pytest

from muva_lib import config as C
from muva_lib.paths import slug


def test_defaults_are_the_papers_values():
    cfg = C.RunCfg()
    assert (cfg.data.height, cfg.data.width) == (256, 128)
    assert cfg.data.batch_size == 64 and cfg.data.num_instances == 4
    assert cfg.model.arch == "ViT-B-16" and cfg.model.num_parts == 3
    assert cfg.stage1.epochs == 120 and cfg.stage1.lr == pytest.approx(3.5e-4)
    assert cfg.stage2.epochs == 60 and cfg.stage2.base_lr == pytest.approx(5e-6)
    assert cfg.stage2.milestones == (30, 50) and cfg.stage2.memory_temp == pytest.approx(0.01)
    assert cfg.seed == 1234


def test_resolution_order_preset_then_method_then_overrides():
    cfg = C.resolve("clipreid", "smoke", protocol="ma->d", seed=3,
                    overrides=["stage2.epochs=2", "model.num_parts=1"])
    assert cfg.model.arch == "muva-tiny"  # preset
    assert cfg.stage2.w_triplet == 1.0 and cfg.stage1.loss == "supcon"  # method
    assert cfg.model.num_parts == 1 and cfg.stage2.epochs == 2  # overrides win
    assert cfg.data.protocol == "ma->d" and cfg.seed == 3


def test_overrides_string_form_and_types():
    cfg = C.resolve(overrides="stage2.milestones=[3,5] eval.rerank=true stage1.lr=1e-3 vge.model=")
    assert cfg.stage2.milestones == (3, 5)
    assert cfg.eval.rerank is True
    assert cfg.stage1.lr == pytest.approx(1e-3)
    assert cfg.vge.model == ""


def test_resolve_does_not_mutate_defaults():
    C.resolve(overrides={"data.height": 64})
    assert C.RunCfg().data.height == 256


@pytest.mark.parametrize("bad, message", [
    ("stage2.epoch=3", "did you mean epochs"),
    ("nosuch.key=1", "unknown config key 'nosuch'"),
    ("stage2.epochs=2.5", "expected an integer"),
    ("eval.rerank=maybe", "expected true/false"),
    ("data=3", "is a group"),
    ("seed.x=1", "is a value, not a group"),
    ("stage2.epochs", "not of the form key=value"),
])
def test_bad_overrides_are_named(bad, message):
    with pytest.raises(C.ConfigError, match=message):
        C.resolve(overrides=[bad])


def test_unknown_method_and_preset():
    with pytest.raises(C.ConfigError, match="valid methods"):
        C.resolve("nope")
    with pytest.raises(C.ConfigError, match="valid presets"):
        C.resolve(preset="huge")


def test_save_load_round_trip_and_hash(tmp_path):
    cfg = C.resolve("muva", "smoke", overrides="stage2.milestones=[2,4]")
    path = C.save(cfg, tmp_path / "config.json")
    back = C.load(path)
    assert back == cfg
    assert C.config_hash(back) == C.config_hash(cfg)
    assert C.config_hash(C.resolve("clipreid", "smoke")) != C.config_hash(cfg)


def test_load_rejects_unknown_keys_with_file_name(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"stage2": {"epocs": 1}}))
    with pytest.raises(C.ConfigError, match=r"c\.json.*epocs"):
        C.load(path)


def test_slug():
    assert slug("d+ms+c3->ma") == "d_ms_c3-to-ma"
    assert slug("synth-a->synth-b") == "synth-a-to-synth-b"
    with pytest.raises(ValueError):
        slug("+++")


def test_a_saved_config_without_a_later_field_reproduces_its_run(tmp_path):
    """config.json files written before ``stage1.schedule`` get the value they ran with (timm: the last
    stage-1 epoch at min_lr), while resolve() uses the new default; a new config round-trips unchanged."""
    from muva_lib.train.stage1 import stage1_epoch_lr

    new = C.resolve("clipreid", "smoke")
    assert new.stage1.schedule == "cosine"
    old = C.to_dict(new)
    del old["stage1"]["schedule"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    back = C.load(path)
    assert back.stage1.schedule == "timm"
    assert [stage1_epoch_lr(e, back) for e in range(1, 5)] == pytest.approx([1.707253e-3, 1.0005e-3, 2.93747e-4, 1e-6],
                                                                            rel=1e-6)
    assert C.from_dict(old).stage1.schedule == "timm"
    assert C.load(C.save(new, tmp_path / "new.json")).stage1.schedule == "cosine"
    # a config without the whole group gets the later fields' old values too
    assert C.from_dict({k: v for k, v in old.items() if k != "stage1"}).stage1.schedule == "timm"


def test_fields_added_later_name_real_fields():
    for key, value in C.FIELDS_ADDED_LATER.items():
        group, name = key.split(".")
        sub = getattr(C.RunCfg(), group)
        assert hasattr(sub, name), key
        assert getattr(getattr(C.apply_overrides(C.RunCfg(), {key: value}), group), name) == value
        assert C.FIELD_RULES[key].check(value), key

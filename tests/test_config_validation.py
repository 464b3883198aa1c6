"""Config validation: one rule per field (a table), checked when a config is resolved or loaded."""
from __future__ import annotations

import dataclasses
import json
import math

import pytest

from muva_lib import config as C

#: key -> (a good value, a bad value) for every config field: a new field needs a rule in
#: muva_lib.config.FIELD_RULES and a line here (test_every_field_has_a_case says which)
CASES: dict[str, tuple[object, object]] = {
    "method": ("clipreid", "clip-reid"),
    "preset": ("paper", "tiny"),
    "seed": (7, -1),
    "device": ("cuda:1", "gpu"),
    "amp": (False, "yes"),
    "deterministic": (False, 1),
    "threads": (2, -1),
    "variant": ("gating-none", "my run/1"),
    "data.protocol": ("ma+d->grid", "synth-a-"),
    "data.height": (256, 0),
    "data.width": (32, -64),
    "data.pixel_mean": ((0.4, 0.5, 0.6), (0.5, 0.5)),
    "data.pixel_std": ((0.2, 0.2, 0.3), (0.5, 0.0, 0.5)),
    "data.train_interpolation": ("bilinear", "cubic"),
    "data.test_interpolation": ("bicubic", "linear"),
    "data.flip_prob": (0.0, 1.5),
    "data.pad": (10, -1),
    "data.erase_prob": (1.0, -0.1),
    "data.batch_size": (32, 0),
    "data.num_instances": (8, 0),
    "data.test_batch_size": (1, 0),
    "data.num_workers": (2, -2),
    "data.split_index": (3, -2),
    "data.all_splits": (True, "all"),
    "data.strict": (True, None),
    "vge.backend": ("prior", "qwen"),
    "vge.model": ("Qwen/Qwen2-VL-2B-Instruct", 3),
    "vge.trust_remote_code": (True, "no"),
    "vge.noise": ("heavy", "medium"),
    "vge.calibrate": (False, 0),
    "vge.source": ("gt", "truth"),
    "vge.noise_seed": (3, -5),
    "vge.noise_jitter": ((0.02,), (0.1, 0.1, 0.1)),  # one rate for the whole box
    "vge.noise_oversize": ((0.1, 0.0, 0.2), (0.1, 0.2)),
    "vge.noise_oversplit": ((0.3,), (1.2,)),
    "vge.noise_missing": ((0.0, 0.5, 1.0), (-0.1,)),
    "vge.noise_garbage": ((), (math.nan,)),
    "vge.noise_swap": ((0.5,), (0.1, 0.1, 0.1)),
    "vge.max_fallback_share": (0.1, 2.0),
    "vge.prompt_template": ("Where is the {phrase}?", "Where is the part?"),
    "vge.answer_format": ("qwen_json", "json"),
    "vge.max_new_tokens": (64, 0),
    "vge.batch_size": (1, 0),
    "vge.detector_min_score": (0.3, math.inf),
    "vge.parse_tolerance": (0.0, 1.0),
    "vge.fence_k": (3.0, -1.0),
    "vge.min_spread": (0.1, 1.5),
    "vge.min_samples": (5, 0),
    "vge.fence_core": ("shorth", "median"),
    "vge.ensure_one_patch": (False, "off"),
    "parsing.source": ("png", "schp"),
    "parsing.png_root": ("/data/parsing", None),
    "parsing.model": ("mattmdjaga/segformer_b2_clothes", 1.0),
    "parsing.grouping": ("head=1,2;upper=5,7", "head:1,2"),
    "parsing.store_size": ((32, 16), (64, 0)),
    "parsing.vote": ("foreground", "mode"),
    "parsing.fg_share": (1.0, 0.0),
    "parsing.batch_size": (2, 0),
    "model.arch": ("ViT-B-16", ""),
    "model.pretrained": ("/weights/clip.pt", None),
    "model.freeze_patch_proj": (False, "true"),
    "model.num_parts": (2, 4),
    "model.part_token_init": ("cls", "zeros"),
    "model.part_token_std": (0.0, -0.02),
    "model.rmp_num_heads": (4, 0),
    "model.rmp_layernorm": (False, 2),
    "model.rmp_inner_shortcut": (False, "n"),
    "model.rmp_sigmoid_tau": (0.5, 0.0),
    "model.gating": ("online", "soft"),
    "model.gate_thresh": (0.3, 1.1),
    "model.mask_max_value": (5.0, -5.0),
    "model.ctx_num": (8, 0),
    "model.ctx_init_std": (0.02, math.nan),
    "model.template_type": ("part-agnostic", "multigrained"),
    "model.domain_context": ("in a mall", None),
    "model.text_context_length": (32, 0),
    "model.activation": ("gelu", "relu"),
    "model.pos_embed_interp": ("bicubic", "linear"),
    "model.cls_head": (True, "cls"),
    "stage1.epochs": (3, -1),
    "stage1.lr": (1e-3, math.nan),
    "stage1.weight_decay": (0.0, -1e-4),
    "stage1.warmup_epochs": (0, -1),
    "stage1.warmup_lr": (0.0, -1e-5),
    "stage1.min_lr": (0.0, math.inf),
    "stage1.batch_size": (32, 0),
    "stage1.cluster_nce_temp": (0.5, 0.0),
    "stage1.loss": ("supcon", "infonce"),
    "stage1.part_epochs": (2, -2),
    "stage1.part_identity": (False, "false"),
    "stage1.part_temp": (0.1, -0.07),
    "stage1.part_schedule": ("restart", "reset"),
    "stage1.schedule": ("timm", "cos"),
    "stage2.epochs": (3, -2),
    "stage2.base_lr": (1e-4, -1e-3),
    "stage2.weight_decay": (5e-4, math.nan),
    "stage2.bias_lr_factor": (2.0, 0.0),
    "stage2.rmp_lr_mult": (1.0, -10.0),
    "stage2.warmup_epochs": (0, -10),
    "stage2.warmup_factor": (1.0, 0.0),
    "stage2.milestones": ((), (50, 30)),
    "stage2.gamma": (0.5, 0.0),
    "stage2.label_smoothing": (0.0, 1.0),
    "stage2.memory_temp": (0.05, 0.0),
    "stage2.memory_momentum": (1.0, 1.2),
    "stage2.hard_memory_update": (False, "hard"),
    "stage2.i2t_tau": (0.5, -1.0),
    "stage2.mask_loss": ("mse", "bce"),
    "stage2.triplet_margin": (0.0, -0.3),
    "stage2.w_id": (0.25, -1.0),
    "stage2.w_memory": (0.0, math.nan),
    "stage2.w_i2t": (2.0, -0.5),
    "stage2.w_mask": (0.5, math.inf),
    "stage2.w_triplet": (1.0, -1.0),
    "stage2.w_fusion": (1.0, -1.0),
    "stage2.fusion_dim": (128, 0),
    "stage2.fusion_stride": (16, 0),
    "stage2.fusion_levels": (2, 0),
    "stage2.fusion_norm": (False, "l2"),
    "stage2.eval_period": (2, -1),
    "stage2.grad_clip": (1.0, -1.0),
    "eval.after_bn": (False, "bn"),
    "eval.with_hidden": (True, 1),
    "eval.feat_norm": (False, 0),
    "eval.metric": ("cosine", "cosin"),
    "eval.ranks": ((1, 3), (5, 1)),
    "eval.max_rank": (30, 0),
    "eval.rerank": (True, "maybe"),
    "eval.rerank_variant": ("paper", "torchreid"),
    "eval.k1": (10, 0),
    "eval.k2": (3, -6),
    "eval.lambda_value": (0.0, 1.3),
    "eval.flip": (True, "h"),
    "eval.chunk_size": (1, 0),
}


def _with(cfg: C.RunCfg, key: str, value: object) -> C.RunCfg:
    """``cfg`` with one field set as is (no coercion), as code that builds a config could."""
    *group, name = key.split(".")
    if not group:
        return dataclasses.replace(cfg, **{name: value})
    sub = dataclasses.replace(getattr(cfg, group[0]), **{name: value})
    return dataclasses.replace(cfg, **{group[0]: sub})


def test_every_field_has_a_rule():
    keys = set(C.config_keys())
    missing, stale = sorted(keys - set(C.FIELD_RULES)), sorted(set(C.FIELD_RULES) - keys)
    assert not missing, (f"config fields without a validation rule: {missing}; add a Rule for each to "
                         "muva_lib.config.FIELD_RULES (ranges, finiteness, allowed names, ...)")
    assert not stale, f"FIELD_RULES names keys no config has: {stale}"


def test_every_field_has_a_case():
    missing = sorted(set(C.config_keys()) - set(CASES))
    assert not missing, (f"add (a good value, a bad value) for {missing} to CASES in "
                         "tests/test_config_validation.py")


def test_a_field_without_a_rule_is_reported(monkeypatch):
    monkeypatch.delitem(C.FIELD_RULES, "eval.k2")
    assert C.validation_errors(C.RunCfg()) == ["eval.k2: no validation rule (add one to muva_lib.config.FIELD_RULES)"]


@pytest.mark.parametrize("key", list(CASES))
def test_each_field_good_and_bad_value(key):
    base = C.resolve("muva", "smoke")
    good, bad = CASES[key]
    assert C.validation_errors(_with(base, key, good)) == []
    with pytest.raises(C.ConfigError) as err:
        C.validate(_with(base, key, bad))
    message = str(err.value)
    shown = list(bad) if isinstance(bad, tuple) else bad
    assert message.startswith(f"invalid config value: {key}={shown!r}: expected "), message


@pytest.mark.parametrize("method", list(C.METHODS))
@pytest.mark.parametrize("preset", list(C.PRESETS))
def test_every_preset_method_and_ablation_is_valid(method, preset):
    ablations = [a for a, ab in C.ABLATIONS.items() if ab.method == method]
    for overrides in [[]] + [C.ablation_overrides(a) for a in ablations]:
        assert C.validation_errors(C.resolve(method, preset, overrides=overrides)) == []


@pytest.mark.parametrize("override, message", [
    # each of these used to train (or loop) before failing, or to finish with meaningless metrics
    ("stage1.epochs=-1", "stage1.epochs=-1: expected an integer >= 1"),
    ("stage2.epochs=-3", "stage2.epochs=-3: expected an integer >= 0"),
    ("stage1.lr=-1e-3", "stage1.lr=-0.001: expected a finite number > 0"),
    ("stage2.base_lr=-5e-6", "stage2.base_lr=-5e-06: expected a finite number > 0"),
    ("stage1.lr=nan", "stage1.lr=nan: expected a finite number > 0"),
    ("stage2.base_lr=.inf", "stage2.base_lr=inf: expected a finite number > 0"),
    ("data.batch_size=18", "data.batch_size=18 must be a multiple of data.num_instances=4"),
    ("data.batch_size=0", "data.batch_size=0: expected an integer >= 1"),
    ("stage1.batch_size=0", "stage1.batch_size=0: expected an integer >= 1"),
    ("eval.metric=cosin", "eval.metric='cosin': expected one of euclidean, cosine"),
    ("stage1.warmup_epochs=9", "stage1.warmup_epochs=9 must be <= stage1.epochs=4"),
    ("stage2.milestones=[7,3]", "stage2.milestones=[7, 3]: expected a list of value(s), each an integer >= 1, "
                                "strictly increasing"),
    ("vge.answer_format=cogvml", "vge.answer_format='cogvml': expected one of auto, "),
    ("data.protocol=nosuch->ma", "unknown dataset name(s): nosuch"),
])
def test_the_reported_bad_values_fail_at_resolve(override, message):
    with pytest.raises(C.ConfigError) as err:
        C.resolve("muva", "smoke", overrides=[override])
    assert message in str(err.value)


def test_stage1_pk_batches_need_whole_identities():
    with pytest.raises(C.ConfigError, match=r"stage1.batch_size=18 must be a multiple of data.num_instances=4"):
        C.resolve("muva", "smoke", overrides=["stage1.batch_size=18"])
    C.resolve("clipreid", "smoke", overrides=["stage1.batch_size=18"])  # random batches of images: any size


def test_unquoted_arrow_protocol_is_refused_with_a_quoting_hint():
    """bash reads ``--protocol synth-a->synth-b`` as protocol ``synth-a-`` and output to a file ``synth-b``."""
    with pytest.raises(C.ConfigError) as err:
        C.resolve("muva", "smoke", protocol="synth-a-")
    assert "data.protocol='synth-a-'" in str(err.value)
    assert 'quote the protocol, e.g. --protocol "synth-a->synth-b"' in str(err.value)


def test_all_failures_in_one_message():
    with pytest.raises(C.ConfigError) as err:
        C.resolve("muva", "smoke", overrides=["stage1.lr=nan", "data.batch_size=0", "eval.metric=cos"])
    lines = str(err.value).splitlines()
    assert lines[0] == "3 invalid config values:"
    assert [ln.split("=")[0].strip() for ln in lines[1:]] == ["data.batch_size", "stage1.lr", "eval.metric"]


def test_cross_rules_wait_for_their_fields():
    """A cross rule over a field that already failed is not run (data.num_instances=0 would divide by 0)."""
    errors = C.validation_errors(_with(C.resolve("muva", "smoke"), "data.num_instances", 0))
    assert errors == ["data.num_instances=0: expected an integer >= 1"]


def test_fusion_stride_must_divide_the_input_when_fused():
    with pytest.raises(C.ConfigError, match=r"stage2.fusion_stride=48 must divide data.height=128"):
        C.resolve("pivl", "smoke", overrides=["stage2.fusion_stride=48"])
    C.resolve("pivl", "smoke", overrides=["stage2.fusion_stride=48", "stage2.w_fusion=0"])


def test_stage2_needs_a_loss_and_part_tokens_for_the_mask_loss():
    with pytest.raises(C.ConfigError, match=r"stage2.w_mask=1.0 needs part tokens \(model.num_parts > 0; it is 0\)"):
        C.resolve("muva", "smoke", overrides=["model.num_parts=0"])
    C.resolve("muva", "smoke", overrides=["model.num_parts=0", "stage2.w_mask=0"])
    zero = [f"{k}=0" for k in ("stage2.w_id", "stage2.w_memory", "stage2.w_i2t", "stage2.w_mask")]
    with pytest.raises(C.ConfigError, match="stage2 has no loss term: one of stage2.w_id, "):
        C.resolve("muva", "smoke", overrides=zero)


def test_load_validates_and_names_the_file(tmp_path):
    path = C.save(C.resolve("muva", "smoke"), tmp_path / "config.json")
    data = json.loads(path.read_text())
    data["stage2"]["epochs"] = -1
    path.write_text(json.dumps(data))
    with pytest.raises(C.ConfigError, match=r"config\.json: invalid config value: stage2.epochs=-1"):
        C.load(path)


def test_enumerations_are_the_consumers_lists():
    """The allowed names are read from the modules that use them: every one passes, nothing else does."""
    from muva_lib.eval.distance import METRICS
    from muva_lib.grounding.answers import FORMATS
    from muva_lib.grounding.backends import BACKENDS
    from muva_lib.human_parsing.sources import PARSING_SOURCES
    from muva_lib.train.optim import PART_SCHEDULES, STAGE1_SCHEDULES

    for key, names in [("eval.metric", METRICS), ("vge.backend", BACKENDS), ("vge.answer_format", ["auto", *FORMATS]),
                       ("parsing.source", PARSING_SOURCES), ("stage1.schedule", STAGE1_SCHEDULES),
                       ("stage1.part_schedule", PART_SCHEDULES)]:
        rule = C.FIELD_RULES[key]
        assert all(rule.check(n) for n in names) and not rule.check("not-a-" + key), key
        assert rule.describe() == "one of " + ", ".join(names)

"""Run folders made before the issue-13 redesign (commit e138951) still load as the same experiment.

The fixtures are the ``config.json`` of two smoke runs trained at e138951 (MUVA and pi-VL,
synth-a->synth-b, seed 3). Loaded with today's code they must equal today's resolved config for the
same method, preset, protocol and seed, so `train --resume` finds them finished and `eval` rebuilds the
same model (the lead re-evaluated both runs after the move: identical mAP / rank-k / mINP).

Since issue 14 the smoke preset starts from the shipped pretrained CLIP (``model.pretrained=synth``); the
old runs started from random weights (``model.pretrained=''`` written in their config), so they are today's
random-init ablation of the same run, and must never be taken for a pretrained-init run.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from muva_lib.config import config_hash, load, resolve, to_dict

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("method", ["muva", "pivl"])
def test_a_run_config_from_before_the_redesign_loads_as_the_same_experiment(method):
    old = load(FIXTURES / f"run_config_e138951_{method}.json")
    now = resolve(method, "smoke", protocol="synth-a->synth-b", seed=3, overrides=["model.pretrained="])
    assert to_dict(old) == to_dict(now)
    assert config_hash(old) == config_hash(now)
    pretrained = resolve(method, "smoke", protocol="synth-a->synth-b", seed=3)
    assert pretrained.model.pretrained == "synth" and config_hash(old) != config_hash(pretrained)

"""Every resolved config of every method x preset x ablation equals the one the code gave before the
recipes moved into ``muva_lib.methods`` (``tests/fixtures/resolved_configs.json``, generated from the
unchanged ``config.METHODS`` / ``PRESET_METHODS`` / ``ABLATIONS``). A recipe change that is meant to
change a run regenerates the fixture in the same commit."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from muva_lib.config import ABLATIONS, METHODS, PRESETS, ablation_overrides, resolve, to_dict

FIXTURE = Path(__file__).parent / "fixtures" / "resolved_configs.json"
PINNED: dict[str, dict] = json.loads(FIXTURE.read_text())


def test_the_fixture_covers_every_method_preset_and_ablation():
    cases = {f"{m}|{p}|" for m in METHODS for p in PRESETS}
    cases |= {f"{a.method}|{p}|{name}" for name, a in ABLATIONS.items() for p in PRESETS}
    assert set(PINNED) == cases


@pytest.mark.parametrize("case", sorted(PINNED))
def test_resolved_config_is_unchanged(case):
    method, preset, ablation = case.split("|")
    overrides = ablation_overrides(ablation) if ablation else None
    assert to_dict(resolve(method, preset, overrides=overrides)) == PINNED[case]

"""``python -m muva_lib config``: the resolved config's differences from the defaults and their sources."""
from __future__ import annotations

import pytest

from muva_lib.__main__ import main
from muva_lib.commands.config import config_rows
from muva_lib.config import PRESETS, resolve, resolve_with_sources, to_dict
from muva_lib.methods import names


def _sources(rows):
    return {r["key"]: r["source"] for r in rows}


@pytest.mark.parametrize("method", names())
@pytest.mark.parametrize("preset", list(PRESETS))
def test_the_command_prints_every_method_and_preset(method, preset, capsys):
    assert main(["config", "--method", method, "--preset", preset]) == 0
    lines = capsys.readouterr().out.splitlines()
    if method == "muva" and preset == "paper":  # the defaults are MUVA's paper values
        assert lines == ["muva / paper: the defaults (--all prints every key)"]
        return
    assert lines[0].startswith(f"{method} / {preset}: ")
    assert [c.strip() for c in lines[2].split("|")[1:5]] == ["key", "value", "default", "source"]
    rows = {r["key"]: r for r in config_rows(method, preset)}
    assert len(lines) == 4 + len(rows)


@pytest.mark.parametrize("method", names())
@pytest.mark.parametrize("preset", list(PRESETS))
def test_sources_resolve_to_the_same_config(method, preset):
    cfg, _ = resolve_with_sources(method, preset)
    assert to_dict(cfg) == to_dict(resolve(method, preset))


def test_each_layer_is_named():
    rows = config_rows("pivl", "smoke", protocol="synth-b", ablation="no-id-tokens", overrides=["stage2.epochs=3"])
    src = _sources(rows)
    assert src["model.arch"] == "preset smoke"
    assert src["stage1.loss"] == "method clipreid (parent of pivl)"
    assert src["stage1.part_schedule"] == "method pivl"
    assert src["stage1.part_epochs"] == "preset smoke x method pivl"
    assert src["data.protocol"] == "argument"
    assert src["stage1.part_identity"] == src["variant"] == "ablation no-id-tokens"
    assert src["stage2.epochs"] == "override"
    assert "eval.metric" not in src  # the default is not printed without --all


def test_a_later_layer_wins_and_all_prints_every_key():
    src = _sources(config_rows("pivl", "smoke", overrides=["stage1.epochs=9"], every_key=True))
    assert src["stage1.epochs"] == "override"
    assert src["eval.metric"] == "default"
    assert src["model.num_parts"] == "method clipreid (parent of pivl)"
    # muva puts CLIP-ReID's changes back: the same values as the defaults, set by muva's recipe
    muva = {r["key"]: r for r in config_rows("muva", "paper", every_key=True)}
    assert muva["model.num_parts"]["source"] == "method muva"
    assert muva["model.num_parts"]["value"] == muva["model.num_parts"]["default"] == "3"
    assert not [r for r in config_rows("muva", "paper") if r["key"] not in ("method", "preset")]


@pytest.mark.parametrize("argv, message", [
    (["--method", "nope"], "unknown method 'nope'"),
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--method", "pivl", "stage2.epoch=3"], "unknown config key 'epoch' in stage2"),
    (["--method", "pivl", "--ablation", "nope"], "unknown ablation 'nope'"),
    (["--method", "muva", "--ablation", "no-fusion"], "changes pivl's recipe, not muva's"),
    (["--method", "pivl", "stage2.epochs=-1"], "stage2.epochs=-1"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(["config", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1

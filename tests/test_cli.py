"""The command line end to end on small inputs: protocols, synth, demo."""
from __future__ import annotations

import pytest

from muva_lib.__main__ import COMMANDS, main


def test_every_command_module_loads_and_has_help(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        assert name in capsys.readouterr().out


def test_protocols_command(capsys):
    assert main(["protocols", "--kind", "synthetic", "--no-check"]) == 0
    out = capsys.readouterr().out
    assert "synth-a+synth-b->synth-c" in out and "ma->d" not in out


def test_demo_runs_on_an_existing_small_benchmark(synth_small, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUVA_SYNTH", str(synth_small.root))
    monkeypatch.setenv("MUVA_FIGURES", str(tmp_path / "figs"))
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "already generated" in out
    rows = [ln for ln in out.splitlines() if ln.startswith("| colour histogram + LDA")]
    in_domain = float(rows[0].split("|")[4])
    cross = float(rows[1].split("|")[4])
    assert in_domain > cross, "the in-domain row must beat the cross-domain row (domain gap)"
    assert (tmp_path / "figs" / "demo" / "sample_identities.png").stat().st_size > 10_000


def test_demo_refuses_a_real_protocol(capsys):
    assert main(["demo", "--protocol", "ma->d"]) == 2
    assert "synthetic" in capsys.readouterr().out

"""Faults around a training run: a real SIGKILL in the middle of a stage-1 and of a stage-2 epoch, then
``--resume``, equals an uninterrupted run (weights, logs, metrics; TensorBoard read back equals the CSVs);
``--resume`` of a finished run compares its config; ``eval`` refuses a checkpoint without a trained image
encoder and a damaged one; commands end with one ``error:`` line; a failed set-up is marked ``failed``."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from muva_lib.__main__ import main
from muva_lib.config import resolve
from muva_lib.train import RunDir, find_resumable, train
from muva_lib.train.train_state import load_train_state

PROTOCOL = "synth-a->synth-b"
#: the smoke preset at seconds per epoch; stage-1 batches of 8 give each epoch a dozen steps to kill it in
SIGKILL_TRAIN = ("threads=1", "stage1.epochs=2", "stage2.epochs=2", "data.batch_size=16", "stage1.batch_size=8",
                 "data.test_batch_size=64", "stage2.eval_period=1")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "muva_lib", "train", "--protocol", PROTOCOL, "--method", "muva", "--preset", "smoke",
            *args, *SIGKILL_TRAIN]


def _kill_mid_epoch(cmd: list[str], runs: Path, stage: str, epoch: int, saved: tuple[str, int]) -> RunDir:
    """Start ``cmd``, read its progress bars until one step of ``epoch`` of ``stage`` is done and steps
    remain, stop it (SIGSTOP), check on disk that the epoch is under way (last.pt holds the ``saved``
    (stage, epoch) before it), then SIGKILL it. Returns its run folder (the newest under ``runs``)."""
    bar = re.compile(rb"%s %d:\s+\d+%%\|[^|\r\n]*\|\s*(\d+)/(\d+)" % (stage.encode(), epoch))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = b""
    try:
        while True:
            chunk = os.read(proc.stderr.fileno(), 1 << 16)
            if not chunk:
                tail = seen.decode(errors="replace")[-3000:]
                pytest.fail(f"exit {proc.wait()} before {stage} epoch {epoch}:\n{tail}")
            seen += chunk
            done = [(int(a), int(b)) for a, b in bar.findall(seen)]
            if any(0 < a < b for a, b in done):
                break
            assert not any(a == b for a, b in done), f"{stage} epoch {epoch} ended before it could be stopped"
        proc.send_signal(signal.SIGSTOP)
        run = RunDir(max(runs.glob("*/muva/*"), key=lambda p: p.name))
        state = load_train_state(run.last_path)  # loads: never a half-written last.pt
        assert (state["stage"], state["epoch"]) == saved, f"stopped in {stage} {epoch}, but last.pt is past it"
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert run.manifest()["status"] == "running"  # a SIGKILL leaves no trace but the saved epochs
    assert not list(run.root.rglob("*.tmp")), "a temporary file of an atomic write was left behind"
    return run


def _untimed(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows]


def _tb_scalars(folder: Path) -> dict[str, dict[int, float]]:
    """Every scalar of the TensorBoard event files under ``folder`` (all processes' files, purged steps
    dropped as TensorBoard does): tag -> {step: value}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


def _assert_tensorboard_equals_csvs(run: RunDir) -> None:
    """tb/stage1 and tb/stage2 hold exactly the CSVs' numbers: one scalar per column and epoch, and the
    evaluations after stage-2 epochs under eval/<target>/<metric>."""
    for stage in ("stage1", "stage2"):
        tb, rows = _tb_scalars(run.root / "tb" / stage), run.read_rows(stage)
        expected = {f"{stage}/{k}": {r["epoch"]: float(r[k]) for r in rows} for k in rows[0] if k != "epoch"}
        evals = [r for r in run.read_rows("eval") if r["stage"] == stage]
        for r in evals:
            for k, v in r.items():
                if k not in ("stage", "epoch", "target"):
                    expected.setdefault(f"eval/{r['target']}/{k}", {})[r["epoch"]] = float(v)
        assert set(tb) == set(expected), stage
        for tag, values in expected.items():
            assert tb[tag].keys() == values.keys(), tag
            for step, v in values.items():  # float32 in the event file, 8 digits in the CSV
                assert tb[tag][step] == pytest.approx(v, rel=1e-6, abs=1e-9), f"{tag} step {step}"
    assert any(k.startswith("eval/") for k in _tb_scalars(run.root / "tb" / "stage2"))


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(train_env, tmp_path):
    cfg = resolve("muva", "smoke", PROTOCOL, overrides=list(SIGKILL_TRAIN))
    whole = RunDir(train(cfg, run_dir=tmp_path / "whole", progress=False).run_dir)

    run = _kill_mid_epoch(_cli(), train_env.runs, "stage1", 2, saved=("stage1", 1))
    assert [r["epoch"] for r in run.read_rows("stage1")] == [1]
    # the bare --resume finds it; killed again in the first stage-2 epoch (last.pt: stage 1's end) ...
    assert _kill_mid_epoch(_cli("--resume"), train_env.runs, "stage2", 1, saved=("stage1", 2)).root == run.root
    # ... and in the second (last.pt: stage 2's first epoch)
    again = _kill_mid_epoch(_cli("--resume", str(run.root)), train_env.runs, "stage2", 2, saved=("stage2", 1))
    assert again.root == run.root
    (run.root / "checkpoints" / ".last.pt.4242.tmp").write_bytes(b"half a last.pt")  # a kill during a write
    done = subprocess.run(_cli("--resume", str(run.root), "--no-progress"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]

    assert run.manifest()["status"] == "finished" and len(run.manifest()["resumed"]) == 3
    assert run.manifest()["resumed"][-1]["removed"] == ["checkpoints/.last.pt.4242.tmp"]
    assert not list(run.root.rglob("*.tmp"))
    a, b = (torch.load(r.final_path, weights_only=True)["state"] for r in (whole, run))
    for comp in a:
        for key in a[comp]:
            assert torch.equal(a[comp][key], b[comp][key]), f"{comp}: {key} differs after the kills"
    assert run.read_metrics() == whole.read_metrics() and run.read_metrics()["synth-b"]["num_queries"] > 0
    for name in ("stage1", "stage2", "eval"):
        assert _untimed(run.read_rows(name)) == _untimed(whole.read_rows(name)), name
    for r in (whole, run):
        _assert_tensorboard_equals_csvs(r)


@pytest.fixture(scope="module")
def finished(synth_small, train_data_root, tmp_path_factory) -> SimpleNamespace:
    """One finished tiny MUVA run (one epoch per stage) and the CLI arguments that made it."""
    overrides = ["threads=1", "stage1.epochs=1", "stage2.epochs=1", "data.batch_size=16", "stage1.batch_size=16",
                 "data.test_batch_size=64"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUVA_SYNTH", str(synth_small.root))
        mp.setenv("MUVA_DATA", str(train_data_root))
        mp.setenv("MUVA_RUNS", str(tmp_path_factory.mktemp("finished_runs")))
        result = train(resolve("muva", "smoke", PROTOCOL, overrides=overrides), progress=False)
    args = ["train", "--protocol", PROTOCOL, "--method", "muva", "--preset", "smoke", "--no-progress"]
    return SimpleNamespace(run=RunDir(result.run_dir), args=args, overrides=overrides, metrics=result.metrics)


def test_resume_of_a_finished_run_compares_the_config(train_env, finished, capsys):
    run, args = finished.run, [*finished.args, "--resume", str(finished.run.root)]
    before = run.config_path.read_text()
    assert main([*args, "--seed", "7", *finished.overrides]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: refusing to resume") and "seed: 1234 -> 7" in err and "the run is finished" in err
    assert main([*args, "--method", "clipreid", *finished.overrides, "stage2.epochs=3"]) == 2
    err = capsys.readouterr().err
    assert "stage2.epochs: 1 -> 3" in err and "method: 'muva' -> 'clipreid'" in err
    assert main([*args, *finished.overrides, "eval.rerank=true"]) == 2  # its metrics are not re-ranked
    assert "python -m muva_lib eval --checkpoint" in capsys.readouterr().err
    assert run.config_path.read_text() == before and run.manifest()["status"] == "finished"

    assert main([*args, "--device", "cpu", *finished.overrides]) == 0  # the same experiment
    out = capsys.readouterr().out
    assert f"run folder: {run.root}" in out and f"| {100 * finished.metrics['synth-b']['mAP']:.1f}" in out
    assert "already finished with this config: nothing was trained" in out


def test_eval_refuses_a_checkpoint_without_a_trained_image_encoder(train_env, finished, capsys):
    assert main(["eval", "--checkpoint", str(finished.run.stage1_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "holds no trained image encoder" in err
    assert str(finished.run.final_path) in err and "Traceback" not in err
    assert main(["eval", "--checkpoint", str(finished.run.final_path)]) == 0


def test_eval_refuses_a_final_checkpoint_with_a_flipped_byte(train_env, finished, tmp_path, capsys):
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("config.json", "manifest.json", "checkpoints/final.pt"):
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes((finished.run.root / name).read_bytes())
    data = bytearray((copy / "checkpoints" / "final.pt").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "checkpoints" / "final.pt").write_bytes(bytes(data))
    assert main(["eval", "--checkpoint", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {copy / 'checkpoints' / 'final.pt'} ")
    assert "corrupt" in err or "cannot be read" in err


def test_a_missing_dataset_ends_train_with_one_error_line_and_a_failed_run(train_env, tmp_path, monkeypatch):
    monkeypatch.setenv("MUVA_SYNTH", str(tmp_path / "no-synth"))
    cmd = [sys.executable, "-m", "muva_lib", "train", "--protocol", PROTOCOL, "--preset", "smoke", "--no-progress"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert [ln for ln in out.stderr.splitlines() if ln.strip()] == [ln for ln in out.stderr.splitlines()
                                                                   if ln.startswith("error: ")]
    assert "synth-a: the synthetic domain is not generated yet" in out.stderr
    (path,) = (train_env.runs / "synth-a-to-synth-b" / "muva").iterdir()
    run = RunDir(path)
    manifest = run.manifest()
    assert manifest["status"] == "failed" and manifest["failed_in"] == "set-up"
    assert manifest["error"].startswith("DatasetError: synth-a")
    assert find_resumable(PROTOCOL, "muva") is None  # --resume does not offer it back ...
    assert main(["train", "--protocol", PROTOCOL, "--preset", "smoke", "--resume", str(path)]) == 2  # ... nor takes it


def test_eval_and_run_report_a_missing_dataset_in_one_line(train_env, finished, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUVA_SYNTH", str(tmp_path / "no-synth"))
    assert main(["eval", "--checkpoint", str(finished.run.root)]) == 2
    err = capsys.readouterr().err
    assert re.match(r"error: synth-[ab]: the synthetic domain is not generated yet", err) and err.count("\n") == 1
    assert main(["run", "--protocol", PROTOCOL, "--method", "clipreid", "--notebooks", "threads=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: synth-a: the synthetic domain") and "Traceback" not in err
    assert main(["run", "--protocol", PROTOCOL, "--seeds", "x"]) == 2
    assert "--seeds x: seeds are integers" in capsys.readouterr().err
    assert json.loads(RunDir(next((train_env.runs / "synth-a-to-synth-b" / "clipreid").iterdir())).manifest_path
                      .read_text())["status"] == "failed"

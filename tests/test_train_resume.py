"""Kill a run after a completed epoch (stage 1, then stage 2), resume it: the same weights and metrics as
an uninterrupted run, bit for bit on CPU; a changed config is refused with the differences named."""
from __future__ import annotations

import pytest
import torch

from muva_lib.config import resolve
from muva_lib.train import ConfigMismatchError, LambdaCallback, find_resumable, load_run, train
from muva_lib.train.train_state import load_train_state


class Killed(Exception):
    pass


def _kill_after(stage: str, epoch: int) -> LambdaCallback:
    def on_epoch_end(s, e, record):
        if (s, e) == (stage, epoch):
            raise Killed(f"{s} epoch {e}")
    return LambdaCallback(on_epoch_end=on_epoch_end)


def _untimed(rows):
    return [{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows]


def _final_state(run_dir):
    return torch.load(run_dir / "checkpoints" / "final.pt", weights_only=True)["state"]


@pytest.mark.slow
def test_resume_after_each_stage_equals_an_uninterrupted_run(train_env):
    cfg = resolve("muva", "smoke", train_env.protocol, overrides=train_env.overrides)
    whole = train(cfg, progress=False)

    with pytest.raises(Killed):
        train(cfg, callbacks=[_kill_after("stage1", 1)], progress=False)
    run = find_resumable(cfg.data.protocol, cfg.method)
    assert run is not None and run.root != whole.run_dir
    assert run.manifest()["status"] == "failed" and "Killed" in run.manifest()["error"]
    assert load_train_state(run.last_path)["stage"] == "stage1" and load_train_state(run.last_path)["epoch"] == 1
    with pytest.raises(Killed):
        train(cfg, resume=True, callbacks=[_kill_after("stage2", 1)], progress=False)
    assert load_train_state(run.last_path)["stage"] == "stage2"
    resumed = train(cfg, resume=True, progress=False)

    assert resumed.run_dir == run.root
    a, b = _final_state(whole.run_dir), _final_state(resumed.run_dir)
    for comp in a:
        for key in a[comp]:
            assert torch.equal(a[comp][key], b[comp][key]), f"{comp}: {key} differs after resuming"
    assert resumed.metrics == whole.metrics
    for stage in ("stage1", "stage2"):  # the histories come back from last.pt; only timings differ
        assert _untimed(getattr(resumed, stage)) == _untimed(getattr(whole, stage))
    back = load_run(run.root)
    assert [r["epoch"] for r in back.stage1] == [1, 2] and [r["epoch"] for r in back.stage2] == [1, 2]
    assert run.manifest()["status"] == "finished" and len(run.manifest()["resumed"]) == 2


def test_resume_refuses_a_different_config(train_env):
    cfg = resolve("clipreid", "smoke", train_env.protocol, overrides=[*train_env.overrides, "stage2.epochs=1"])
    with pytest.raises(Killed):
        train(cfg, callbacks=[_kill_after("stage1", 1)], progress=False)
    other = resolve("clipreid", "smoke", train_env.protocol, overrides=[*train_env.overrides, "stage2.epochs=3"])
    with pytest.raises(ConfigMismatchError, match=r"stage2\.epochs: 1 -> 3"):
        train(other, resume=True, progress=False)
    fine = resolve("clipreid", "smoke", train_env.protocol,
                   overrides=[*train_env.overrides, "stage2.epochs=1", "eval.rerank=true"])
    result = train(fine, resume=True, progress=False)  # evaluation settings may change
    assert result.run_dir is not None and result.metrics["synth-b"]["num_splits"] == 1
    assert len(result.stage1) == 2 and len(result.stage2) == 1

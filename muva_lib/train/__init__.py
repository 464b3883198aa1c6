"""Two-stage training (prompts, then the image encoder), run folders, resume and DDP: the notebook-facing API.

Typical use::

    from muva_lib import resolve
    from muva_lib.train import train, load_run
    result = train(resolve("muva", "smoke", "synth-a->synth-b"))
    pandas.DataFrame(result.stage2); result.metrics["synth-b"]["mAP"]

Step by step: ``setup = prepare(cfg)``, ``run_stage1(setup)``, ``run_stage2(setup)``, ``finish(setup)``.
"""
from .api import TrainResult, evaluate_run, finish, load_run, model_from_checkpoint, open_run, train
from .run_eval import evaluate_model, test_encoder
from .loop import Callback, LambdaCallback, StepOutput, train_epoch
from .optim import describe_groups, stage1_lr, stage2_lr_factor
from .rundir import ConfigMismatchError, NotResumableError, RunDir, find_resumable
from .setup import TrainSetup, feature_pass, prepare
from .stage1 import Stage1Cache, load_or_compute_cache, run_stage1, stage1_weights
from .stage2 import build_memory, run_stage2, stage2_weights

__all__ = [
    "TrainResult", "train", "evaluate_run", "finish", "load_run", "model_from_checkpoint", "open_run",
    "evaluate_model", "test_encoder", "Callback", "LambdaCallback", "StepOutput", "train_epoch", "describe_groups",
    "stage1_lr", "stage2_lr_factor", "ConfigMismatchError", "NotResumableError", "RunDir", "find_resumable",
    "TrainSetup", "feature_pass", "prepare", "Stage1Cache", "load_or_compute_cache", "run_stage1", "stage1_weights",
    "build_memory", "run_stage2", "stage2_weights",
]

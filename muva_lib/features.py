"""The one feature path: runs a model over a loader, batch by batch, without gradients, and collects what it returns.

:func:`batch_features` is the loop itself (image to the device, optional AMP, optional flip averaging,
fp32 outputs, in loader order); everything that extracts features goes through it:

* :func:`extract_features` (test features of a loader with pids / camids / keys): evaluation
  (:mod:`muva_lib.eval.evaluator`) and the notebooks' retrieval probe (:func:`muva_lib.analysis.retrieval_probe`);
* :func:`model_features` (a model's eval-mode pass over items with the test transform and, optionally,
  teacher-forced VGE masks): ``train.setup.feature_pass`` (which adds the DDP sharding and gathering) runs
  it for the training passes (stage-1 cache, stage-2 VPM-2 memory, the pi-VL patch cache in
  :mod:`muva_lib.methods.pivl_training`) and the notebooks' memory probe (:func:`muva_lib.analysis.memory_probe`);
* the notebooks' AM-MSA mask probe (:func:`muva_lib.analysis.mask_probe`) calls :func:`batch_features` directly.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from .batches.loaders import make_test_loader
from .utils import autocast

if TYPE_CHECKING:
    from .config import DataCfg
    from .data.types import Item
    from .models.factory import ReidModel, ReidOutput

__all__ = ["batch_features", "extract_features", "model_features"]

#: What an ``encode_batch`` returns: one tensor [B, ...] or a tuple of them.
Encoded = Union[torch.Tensor, tuple[torch.Tensor, ...]]


def _flip_mean(a: Encoded, b: Encoded) -> Encoded:
    return tuple((x + y) / 2 for x, y in zip(a, b)) if isinstance(a, tuple) else (a + b) / 2


def _as_float(out: Encoded) -> Encoded:
    return tuple(x.float() for x in out) if isinstance(out, tuple) else out.float()


@torch.no_grad()
def batch_features(loader: Iterable[Mapping[str, Any]], encode_batch: Callable[[Mapping[str, Any]], Encoded],
                   device: torch.device | str, *, amp: bool = False, flip: bool = False, progress: bool = True,
                   desc: str = "features") -> Iterator[tuple[Mapping[str, Any], Encoded]]:
    """Yield ``(batch, encode_batch(batch))`` for every batch of ``loader``, in loader order, without gradients.

    ``batch``: the loader's dict (``muva_lib.batches.loaders``) with ``img`` [B, 3, H, W] moved to ``device``;
    other entries (``mask`` Bool[B, R, L], ``pid``, ``key``...) stay as the loader made them (CPU).
    ``encode_batch`` returns a tensor [B, ...] or a tuple of tensors; it runs under fp16 autocast when
    ``amp`` (CUDA only). With ``flip`` each output is the mean of the batch's and of its horizontal mirror's
    (only ``img`` is mirrored). Outputs are cast to float32 and stay on the device. The caller puts the
    model in eval mode.
    """
    device = torch.device(device)
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
        batch = {**batch, "img": batch["img"].to(device, non_blocking=True)}
        with autocast(device, amp):
            out = encode_batch(batch)
        if flip:
            mirrored = {**batch, "img": torch.flip(batch["img"], dims=[3])}
            with autocast(device, amp):
                out = _flip_mean(out, encode_batch(mirrored))
        yield batch, _as_float(out)


def extract_features(encode: Callable[[torch.Tensor], torch.Tensor], loader: Iterable[Mapping[str, Any]],
                     device: torch.device | str, *, flip: bool = False, progress: bool = True,
                     desc: str = "features") -> dict[str, Any]:
    """Run ``encode`` (Tensor[B, 3, H, W] -> Tensor[B, D]) over every batch of ``loader``.

    Batches are dicts with ``img`` [B, 3, H, W], ``pid``, ``camid``, ``key`` (see
    ``muva_lib.batches.loaders``); each image batch is moved to ``device``. With ``flip`` the feature
    is the mean of the image's and its horizontal mirror's. The caller puts the model in eval mode
    and chooses any AMP context. Returns {"feats": float32 [N, D] on CPU, "pids": int64 [N],
    "camids": int64 [N] (NumPy), "keys": list of N str}, in loader order.
    """
    feats: list[torch.Tensor] = []
    pids: list[np.ndarray] = []
    camids: list[np.ndarray] = []
    keys: list[str] = []
    for batch, out in batch_features(loader, lambda b: encode(b["img"]), device, flip=flip, progress=progress,
                                     desc=desc):
        n = batch["img"].shape[0]
        if out.ndim != 2 or out.shape[0] != n:
            raise ValueError(f"encode returned shape {tuple(out.shape)} for a batch of {n} images; expected [B, D]")
        feats.append(out.cpu())
        pids.append(np.asarray(batch["pid"], dtype=np.int64))
        camids.append(np.asarray(batch["camid"], dtype=np.int64))
        keys.extend(batch["key"])
    if not feats:
        raise ValueError(f"{desc}: the loader yielded no batches")
    return {"feats": torch.cat(feats), "pids": np.concatenate(pids), "camids": np.concatenate(camids),
            "keys": keys}


def model_features(model: ReidModel, items: Sequence[Item], data_cfg: DataCfg, device: torch.device,
                   select: Callable[[ReidOutput], torch.Tensor], *, masks: Mapping[str, Any] | None = None,
                   amp: bool = False, return_patches: bool = False, progress: bool = True,
                   desc: str = "features") -> torch.Tensor:
    """Eval-mode pass of ``model`` over ``items`` with the test transform: ``select(model output)`` per batch
    -> [M, ...] float32 on ``device``, in item order (M = len(items)).

    ``masks`` ``{key: bool [R, L]}``: the VGE masks gate every block (teacher forcing; the RMPs are
    skipped); None: the model predicts its masks. ``amp``: fp16 autocast on CUDA around the model and
    ``select``. ``return_patches``: the output carries the projected patch tokens [B, L, d]. The model's
    train / eval mode is restored afterwards."""
    def encode_batch(batch: Mapping[str, Any]) -> torch.Tensor:
        mask = batch["mask"].to(device, non_blocking=True) if masks is not None else None
        return select(model(batch["img"], part_masks=mask, return_patches=return_patches))

    was_training = model.training
    model.eval()
    try:
        loader = make_test_loader(list(items), data_cfg, device, masks)
        chunks = [out for _, out in batch_features(loader, encode_batch, device, amp=amp, progress=progress,
                                                   desc=desc)]
    finally:
        model.train(was_training)
    return torch.cat(chunks)

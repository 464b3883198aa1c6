"""``create_model``: the re-ID model of a method (image encoder, heads, prompts, frozen text encoder) from a config."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..config import METHODS, ModelCfg, RunCfg, to_dict
from ..utils import resolve_device
from .ammsa import AMMSAEncoder, EncoderOutput
from .clip_backbone import create_clip
from .heads import BNNeck, IdClassifier
from .prompt_learner import PromptLearner, TextEncoder, build_templates

__all__ = ["ReidOutput", "ReidModel", "create_model", "list_methods"]


def list_methods() -> list[str]:
    """The method names a config can ask for (``muva``, ``clipreid``, ``pivl``)."""
    return list(METHODS)


@dataclass
class ReidOutput(EncoderOutput):
    """The encoder's output plus the heads: ``bn_feat`` = BN(f) [B, F], ``logits`` [B, N]; with the
    CLIP-ReID CLS head (``model.cls_head``) also ``cls_bn_feat`` = BN'(cls_hidden) [B, D], ``cls_logits`` [B, N]."""

    bn_feat: Tensor | None = None
    logits: Tensor | None = None
    cls_bn_feat: Tensor | None = None
    cls_logits: Tensor | None = None


class ReidModel(nn.Module):
    """Image encoder (AM-MSA, or plain for ``num_parts=0``), BNNeck, ID classifier, prompt learner and the
    frozen text encoder. ``meta`` holds what a checkpoint must agree with (config, classes, image size).
    ``cls_bnneck`` / ``cls_classifier``: CLIP-ReID's second head on the D-wide CLS (None for MUVA)."""

    def __init__(self, image_encoder: AMMSAEncoder, bnneck: BNNeck, classifier: IdClassifier,
                 prompt_learner: PromptLearner, text_encoder: TextEncoder, meta: dict[str, Any],
                 cls_bnneck: BNNeck | None = None, cls_classifier: IdClassifier | None = None):
        super().__init__()
        self.image_encoder = image_encoder
        self.bnneck = bnneck
        self.classifier = classifier
        self.prompt_learner = prompt_learner
        self.text_encoder = text_encoder
        self.meta = meta
        if (cls_bnneck is None) != (cls_classifier is None):
            raise ValueError("cls_bnneck and cls_classifier come together")
        self.cls_bnneck = cls_bnneck
        self.cls_classifier = cls_classifier

    @property
    def rmp(self) -> nn.ModuleList:
        """The residual mask predictors, one per block (empty for ``num_parts=0``)."""
        return self.image_encoder.rmp

    @property
    def part_tokens(self) -> list[nn.Parameter]:
        """The part-token parameters: shared tokens (unless ``patch_avg``) and their positional embeddings."""
        enc = self.image_encoder
        return [p for p in (enc.part_tokens, enc.part_pos_embed) if p is not None]

    @property
    def num_parts(self) -> int:
        return self.image_encoder.num_parts

    @property
    def device(self) -> torch.device:
        return self.bnneck.weight.device

    def forward(self, images: Tensor, part_masks: Tensor | None = None, need_weights: bool = False,
                return_patches: bool = False, hidden_blocks: tuple[int, ...] = ()) -> ReidOutput:
        """images [B, 3, H, W] -> tokens, f, BN(f), ID logits, per-block mask logits (see ReidOutput);
        ``hidden_blocks``: also those blocks' patch tokens (``hidden``, pi-VL's fusion head)."""
        enc = self.image_encoder(images, part_masks, need_weights, return_patches, hidden_blocks)
        bn = self.bnneck(enc.feat)
        cls_bn = self.cls_bnneck(enc.cls_hidden) if self.cls_bnneck is not None else None
        return ReidOutput(**{f.name: getattr(enc, f.name) for f in dataclasses.fields(enc)},
                          bn_feat=bn, logits=self.classifier(bn), cls_bn_feat=cls_bn,
                          cls_logits=self.cls_classifier(cls_bn) if cls_bn is not None else None)

    def encode_text(self, labels: Tensor) -> Tensor:
        """Identity labels [B] -> text features [B, 1+R, d] (gradient reaches the prompt context only)."""
        prompts = self.prompt_learner(labels)
        b, p = prompts.shape[:2]
        eot = self.prompt_learner.eot_index.repeat(b)
        return self.text_encoder(prompts.flatten(0, 1), eot).view(b, p, -1)

    def text_features(self, labels: Tensor) -> Tensor:
        """Like :meth:`encode_text` but each distinct label is encoded once (PK batches repeat ids)."""
        uniq, inverse = torch.unique(labels, return_inverse=True)
        return self.encode_text(uniq)[inverse]

    @torch.no_grad()
    def all_text_features(self, chunk_size: int = 64) -> Tensor:
        """Text features of every identity, [N, 1+R, d] (the stage-2 text memory), in chunks."""
        n = self.prompt_learner.ctx.shape[0]
        labels = torch.arange(n, device=self.device)
        return torch.cat([self.encode_text(c) for c in labels.split(chunk_size)], dim=0)

    @torch.no_grad()
    def encode_image_for_eval(self, images: Tensor, part_masks: Tensor | None = None, after_bn: bool = True,
                              with_hidden: bool = False) -> Tensor:
        """Test-time feature [B, F] (muva_spec.md section 2): BN(f) with predicted masks, f = concat of the
        projected CLS and part tokens. ``after_bn=False`` gives f. ``with_hidden`` prepends the D-wide CLS
        before the projection: ``after_bn=False, with_hidden=True`` on ``num_parts=0`` is CLIP-ReID's
        1280-d test feature (peers.md 2.5). Not L2-normalised (EvalCfg.feat_norm does that). Needs eval mode.
        """
        if self.training:
            raise RuntimeError("encode_image_for_eval needs model.eval() (BNNeck would use batch statistics)")
        enc = self.image_encoder(images, part_masks)
        feat = self.bnneck(enc.feat) if after_bn else enc.feat
        return torch.cat([enc.cls_hidden, feat], dim=1) if with_hidden else feat


def create_model(cfg: RunCfg | ModelCfg, num_classes: int, device: str | torch.device | None = None,
                 image_size: tuple[int, int] | None = None, method: str | None = None) -> ReidModel:
    """Build the model of ``cfg`` (a RunCfg: method, image size and default device from it; or a
    ModelCfg: 256x128 and CPU unless given) for ``num_classes`` training identities on ``device``.
    The method only acts through the config (``num_parts=0`` for CLIP-ReID)."""
    if isinstance(cfg, RunCfg):
        device = device if device is not None else resolve_device(cfg.device)
        method = method or cfg.method
        image_size = image_size or (cfg.data.height, cfg.data.width)
        mcfg = cfg.model
    else:
        mcfg = cfg
        image_size = image_size or (256, 128)
        method = method or ("muva" if mcfg.num_parts else "clipreid")
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes} must be >= 1")
    device = torch.device(device if device is not None else "cpu")
    clip, source, quick_gelu = create_clip(mcfg.arch, mcfg.pretrained, tuple(image_size), device=device,
                                           activation=mcfg.activation, context_length=mcfg.text_context_length,
                                           pos_embed_interp=mcfg.pos_embed_interp)
    encoder = AMMSAEncoder.from_config(clip.visual, mcfg)
    if mcfg.freeze_patch_proj:
        encoder.visual.conv1.requires_grad_(False)
    text = TextEncoder(clip)
    templates = build_templates(mcfg.num_parts, template_type=mcfg.template_type,
                                domain_context=mcfg.domain_context, ctx_num=mcfg.ctx_num)
    prompts = PromptLearner(num_classes, templates, text, ctx_num=mcfg.ctx_num, init_std=mcfg.ctx_init_std)
    meta = {"method": method, "model": to_dict(mcfg), "num_classes": int(num_classes),
            "image_size": [int(s) for s in image_size], "quick_gelu": bool(quick_gelu),
            "weights": source.describe()}
    heads = (BNNeck(encoder.feat_dim), IdClassifier(encoder.feat_dim, num_classes))
    cls_heads = (BNNeck(encoder.width), IdClassifier(encoder.width, num_classes)) if mcfg.cls_head else (None, None)
    model = ReidModel(encoder, *heads, prompts, text, meta, *cls_heads)
    return model.to(device)

"""The ``detector`` backend: an open-vocabulary detector (Grounding DINO, OWLv2) queried with part phrases.

Each part is one text query; the best-scoring box per part and image is the answer (after the
same box validation as parsed text). Scores and boxes are read from the model outputs directly:
Grounding DINO (and MM Grounding DINO): per query the max over text tokens of the sigmoid
logits, boxes (cx, cy, w, h) relative to the image; OWLv2: per patch and query the sigmoid
logit, boxes relative to the square the image was padded to (bottom / right), so they are
scaled by ``max(W, H)``.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from PIL import Image

from ...data.types import PARTS, Item
from ..answers import validate_box
from ..prompts import DETECTOR_PHRASES
from .backend import Answer
from .hf import HfBackend, to_device

__all__ = ["DetectorBackend"]

def _corners(cxcywh: Any) -> Any:
    """``[..., 4]`` (cx, cy, w, h) -> (x0, y0, x1, y1)."""
    import torch

    cx, cy, w, h = cxcywh.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


class DetectorBackend(HfBackend):
    """Best box per part phrase from a zero-shot detector.

    ``min_score``: a best box scoring below it is a fallback (``0`` keeps every best box).
    ``phrases`` default to :data:`DETECTOR_PHRASES`; Grounding DINO gets a trailing period.
    """

    name = "detector"
    model_classes = ("AutoModelForZeroShotObjectDetection",)

    def __init__(self, model: str, *, device: Any = "auto", trust_remote_code: bool = False,
                 phrases: Mapping[str, str] | None = None, min_score: float = 0.0, batch_size: int = 8,
                 dtype: str = "auto", tolerance: float = 0.02, parts: Sequence[str] = PARTS) -> None:
        super().__init__(model, device=device, trust_remote_code=trust_remote_code, batch_size=batch_size,
                         dtype=dtype, tolerance=tolerance, parts=parts)
        phrases = DETECTOR_PHRASES if phrases is None else phrases
        self.phrases = {p: phrases[p] for p in self.parts}
        self.min_score = float(min_score)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "phrases": self.phrases, "min_score": self.min_score}

    def _inputs(self, processor: Any, images: list[Image.Image], text: Any) -> dict[str, Any]:
        inputs = processor(images=images, text=text, return_tensors="pt", padding=True, truncation=True)
        return to_device(inputs, self.device, next(self.load()[1].parameters()).dtype)

    def detect(self, images: Sequence[Image.Image]) -> list[dict[str, tuple[list[float], float]]]:
        """``[{part: (best box in pixels (x0, y0, x1, y1), score)}]`` per image (unvalidated)."""
        import torch

        processor, net = self.load()
        rgb = [im.convert("RGB") for im in images]
        sizes = torch.tensor([im.size for im in rgb], dtype=torch.float32)  # [B, 2] (W, H)
        out: list[dict[str, tuple[list[float], float]]] = [{} for _ in rgb]
        with torch.inference_mode():
            if "owl" in net.config.model_type:
                res = net(**self._inputs(processor, rgb, [list(self.phrases.values())] * len(rgb)))
                scores = torch.nan_to_num(res.logits.float().sigmoid(), nan=-1.0)  # [B, patches, R]
                side = sizes.max(dim=1).values.view(-1, 1, 1)  # padded square side
                boxes = _corners(res.pred_boxes.float().cpu()) * side
                for r, part in enumerate(self.phrases):
                    best = scores[..., r].argmax(dim=1).cpu()
                    for i in range(len(rgb)):
                        out[i][part] = (boxes[i, best[i]].tolist(), float(scores[i, best[i], r]))
            else:
                for part, phrase in self.phrases.items():
                    text = phrase if phrase.endswith(".") else phrase + "."
                    res = net(**self._inputs(processor, rgb, [text] * len(rgb)))
                    scores = torch.nan_to_num(res.logits.float().sigmoid().amax(dim=-1), nan=-1.0)  # [B, Q]
                    best = scores.argmax(dim=1).cpu()
                    boxes = _corners(res.pred_boxes.float().cpu()) * sizes.repeat(1, 2)[:, None, :]
                    for i in range(len(rgb)):
                        out[i][part] = (boxes[i, best[i]].tolist(), float(scores[i, best[i]]))
        return out

    def ground(self, images: Sequence[Image.Image], items: Sequence[Item]) -> list[dict[str, Answer]]:
        results = self.detect(images)
        out: list[dict[str, Answer]] = []
        for im, res in zip(images, results):
            answers: dict[str, Answer] = {}
            for part, (box, score) in res.items():
                raw = json.dumps({"phrase": self.phrases[part], "score": round(score, 4),
                                  "box": [round(v, 2) for v in box]})
                valid, why = validate_box(box, im.size, self.tolerance)
                if valid is not None and not score >= self.min_score:
                    valid, why = None, f"best score {score:.3f} below min_score {self.min_score}"
                answers[part] = Answer(raw, valid, "ok" if valid is not None else "fallback", why)
            out.append(answers)
        return out

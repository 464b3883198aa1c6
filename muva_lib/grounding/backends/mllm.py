"""The ``mllm`` backend: a transformers image-text-to-text model answering one grounding prompt per part.

Works with processor-based chat VLMs (Qwen2-VL / Qwen2.5-VL, LLaVA, Idefics, Florence-2 with a
task-token template, ...): one prompt per part per image, the processor's chat template when it
has one, left-padded batched greedy ``generate`` capped at ``max_new_tokens``, answers decoded
and parsed by :func:`muva_lib.grounding.answers.parse_answer`. CogVLM itself ships its own input
builder as remote code and is not driven by a processor; use its answers through the parser.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from PIL import Image

from ...data.types import PARTS, Item
from ..answers import check_answer_format, parse_answer
from ..prompts import GROUNDING_TEMPLATE, part_prompts
from .backend import Answer
from .hf import HfBackend, to_device

__all__ = ["MllmBackend"]


class MllmBackend(HfBackend):
    """Grounding by prompting a multimodal LLM.

    ``model``: hub id or local directory; ``device``: ``auto`` / ``cpu`` / ``cuda:N``;
    ``trust_remote_code`` is forwarded only when True; ``template`` must contain ``{phrase}``
    (``phrases`` maps parts to the phrase, default :data:`PART_PHRASES`); ``answer_format``:
    a :data:`muva_lib.grounding.answers.FORMATS` name or ``auto``; ``batch_size``: images per
    call (each gives ``len(parts)`` prompts to one ``generate``); ``generate_kwargs`` go to
    ``model.generate`` unchanged (e.g. ``num_beams``).
    """

    name = "mllm"
    model_classes = ("AutoModelForImageTextToText", "AutoModelForVision2Seq", "AutoModelForCausalLM")

    def __init__(self, model: str, *, device: Any = "auto", trust_remote_code: bool = False,
                 template: str = GROUNDING_TEMPLATE, phrases: Mapping[str, str] | None = None,
                 answer_format: str = "auto", max_new_tokens: int = 48, batch_size: int = 4,
                 dtype: str = "auto", tolerance: float = 0.02,
                 generate_kwargs: Mapping[str, Any] | None = None, parts: Sequence[str] = PARTS) -> None:
        self.answer_format = check_answer_format(answer_format)
        super().__init__(model, device=device, trust_remote_code=trust_remote_code, batch_size=batch_size,
                         dtype=dtype, tolerance=tolerance, parts=parts)
        self.prompts = part_prompts(template, phrases, self.parts)
        self.max_new_tokens = int(max_new_tokens)
        self.generate_kwargs = dict(generate_kwargs or {})

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "prompts": self.prompts, "max_new_tokens": self.max_new_tokens,
                "answer_format": self.answer_format}

    def on_load(self, processor: Any, net: Any) -> None:
        tok = getattr(processor, "tokenizer", None)
        if tok is not None:
            tok.padding_side = "left"  # decoder-only generation continues after the prompt

    def _text(self, processor: Any, prompt: str) -> str:
        if getattr(processor, "chat_template", None):
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
            return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return prompt

    def generate(self, images: Sequence[Image.Image], prompts: Sequence[str]
                 ) -> list[tuple[str, tuple[float, float] | None]]:
        """One answer per (image, prompt) pair: ``(decoded text, pixel frame of the input or None)``.

        The frame is the processor's resized input size for models that report it
        (``image_grid_thw``, Qwen2-VL family); pixel answers are in that frame.
        """
        import torch

        processor, net = self.load()
        texts = [self._text(processor, p) for p in prompts]
        inputs = processor(images=list(images), text=texts, return_tensors="pt", padding=True)
        frames: list[tuple[float, float] | None] = [None] * len(texts)
        thw = inputs.get("image_grid_thw")
        patch = getattr(getattr(processor, "image_processor", None), "patch_size", None)
        if thw is not None and isinstance(patch, int):
            frames = [(float(t[2]) * patch, float(t[1]) * patch) for t in thw.tolist()]
        inputs = to_device(inputs, self.device, next(net.parameters()).dtype)
        kwargs = {"max_new_tokens": self.max_new_tokens, "do_sample": False, **self.generate_kwargs}
        with torch.inference_mode():
            out = net.generate(**inputs, **kwargs)
        if not getattr(net.config, "is_encoder_decoder", False):
            out = out[:, inputs["input_ids"].shape[1]:]
        decoded = processor.batch_decode(out, skip_special_tokens=False)
        tok = getattr(processor, "tokenizer", processor)
        strip = [t for t in (getattr(tok, "pad_token", None), getattr(tok, "eos_token", None),
                             getattr(tok, "bos_token", None)) if t]
        clean = []
        for s in decoded:
            for t in strip:
                s = s.replace(t, "")
            clean.append(s.strip())
        return list(zip(clean, frames))

    def ground(self, images: Sequence[Image.Image], items: Sequence[Item]) -> list[dict[str, Answer]]:
        rgb = [im.convert("RGB") for im in images]
        pairs = [(i, p) for i in range(len(rgb)) for p in self.parts]
        answers = self.generate([rgb[i] for i, _ in pairs], [self.prompts[p] for _, p in pairs])
        out: list[dict[str, Answer]] = [{} for _ in rgb]
        for (i, p), (text, frame) in zip(pairs, answers):
            parsed = parse_answer(text, rgb[i].size, frame, self.answer_format, self.tolerance)
            out[i][p] = Answer(text, parsed.box, parsed.status, parsed.reason)
        return out



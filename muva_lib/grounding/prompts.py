"""Part phrases and grounding prompts (muva_spec.md 1.1): one query per part per image."""
from __future__ import annotations

from typing import Mapping

from ..data.types import PARTS

__all__ = ["PART_PHRASES", "DETECTOR_PHRASES", "GROUNDING_TEMPLATE", "grounding_prompt", "part_prompts"]

#: what the paper's VGE is asked to find, per part (the ``<p>`` of the instruction)
PART_PHRASES: dict[str, str] = {
    "head": "the head of the person",
    "upper": "the upper body of the person",
    "legs": "the legs of the person",
}

#: short noun phrases for open-vocabulary detectors (Grounding DINO wants a trailing period)
DETECTOR_PHRASES: dict[str, str] = {
    "head": "a person's head",
    "upper": "a person's upper body",
    "legs": "a person's legs",
}

#: the grounding instruction of the pipeline figure; ``{phrase}`` is replaced by a part phrase
GROUNDING_TEMPLATE = "Guide me to the location of {phrase} within the image by providing its bounding boxes"


def grounding_prompt(part: str, template: str = GROUNDING_TEMPLATE,
                     phrases: Mapping[str, str] | None = None) -> str:
    """The instruction for one part, e.g. ``grounding_prompt("head")``."""
    phrases = PART_PHRASES if phrases is None else phrases
    if part not in phrases:
        raise KeyError(f"no phrase for part {part!r}; known parts: {', '.join(phrases)}")
    if "{phrase}" not in template:
        raise ValueError(f"prompt template must contain '{{phrase}}': {template!r}")
    return template.replace("{phrase}", phrases[part])


def part_prompts(template: str = GROUNDING_TEMPLATE, phrases: Mapping[str, str] | None = None,
                 parts: tuple[str, ...] = PARTS) -> dict[str, str]:
    """``{part: prompt}`` for every part, in part order."""
    return {p: grounding_prompt(p, template, phrases) for p in parts}

"""The texts of the zero-shot checks, built from a synthetic image's attributes in the benchmark captions' words.

* attribute prompts: "a person with " + the phrase of the attribute's part, the attribute set to each value and
  everything else as in the image ("a person with long black hair" / "long brown hair" ...), so the prompts of
  one image differ in that attribute only;
* the binding pair: the caption and the same caption with the upper and lower colours swapped;
* part texts: the words "head", "upper body", "legs".

The phrases follow :func:`muva_lib.data.synth.identity.caption` (a test checks that each is part of the caption).
"""
from __future__ import annotations

from typing import Callable, Mapping

from ...data.synth.identity import BAGS, CLOTH, HAIR, HAIR_STYLES, HATS, LOWER_TYPES, PATTERNS, SHOES, SLEEVES, caption
from ...data.synth.identity import with_article
from ...data.types import PARTS

__all__ = ["PART_WORDS", "PROMPT_PREFIX", "ATTRIBUTE_VALUES", "applies", "attribute_phrase", "attribute_prompts",
           "swap_colours", "binding_captions", "part_texts"]

#: the text of each part in :data:`muva_lib.data.types.PARTS` order (pi-VL / MUVA part words)
PART_WORDS: dict[str, str] = {"head": "head", "upper": "upper body", "legs": "legs"}
PROMPT_PREFIX = "a person with "
Attrs = Mapping[str, str]


def _hair(a: Attrs) -> str:
    return f"{a['hair_style']} {a['hair_colour']} hair"


def _hat(a: Attrs) -> str:
    return with_article(f"{a['hat_colour']} {a['hat']}")


def _upper(a: Attrs) -> str:
    pattern = {"plain": "", "stripes": "striped ", "checks": "checked "}[a["upper_pattern"]]
    garment = "t-shirt" if a["sleeves"] == "short" else "long-sleeved shirt"
    return with_article(f"{a['upper_colour']} {pattern}{garment}")


def _bag(a: Attrs) -> str:
    return with_article(f"{a['bag_colour']} {'backpack' if a['bag'] == 'backpack' else 'shoulder bag'}")


def _lower(a: Attrs) -> str:
    lower = f"{a['lower_colour']} {a['lower_type']}"
    return with_article(lower) if a["lower_type"] == "skirt" else lower


def _shoes(a: Attrs) -> str:
    return f"{a['shoes_colour']} shoes"


#: each scored attribute: its values (prompt order = label index) and the phrase that shows it
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "hair_colour": tuple(HAIR), "hair_style": HAIR_STYLES, "hat": HATS, "hat_colour": tuple(CLOTH),
    "upper_colour": tuple(CLOTH), "upper_pattern": PATTERNS, "sleeves": SLEEVES, "bag": BAGS,
    "bag_colour": tuple(CLOTH), "lower_type": LOWER_TYPES, "lower_colour": tuple(CLOTH), "shoes_colour": SHOES,
}
_PHRASE: dict[str, Callable[[Attrs], str]] = {
    "hair_colour": _hair, "hair_style": _hair, "hat": _hat, "hat_colour": _hat, "upper_colour": _upper,
    "upper_pattern": _upper, "sleeves": _upper, "bag": _bag, "bag_colour": _bag, "lower_type": _lower,
    "lower_colour": _lower, "shoes_colour": _shoes,
}


def applies(attrs: Attrs, key: str) -> bool:
    """Whether ``key`` is scored on this image: hat and bag attributes only when it wears one (the captions
    never name an absent hat or bag)."""
    if key not in ATTRIBUTE_VALUES:
        raise KeyError(f"unknown attribute {key!r}; scored: {', '.join(ATTRIBUTE_VALUES)}")
    if key in ("hat", "hat_colour"):
        return attrs["hat"] != "none"
    if key in ("bag", "bag_colour"):
        return attrs["bag"] != "none"
    return True


def attribute_phrase(attrs: Attrs, key: str) -> str:
    """The caption phrase that shows ``key`` ("long black hair", "a red striped t-shirt", ...)."""
    return _PHRASE[key](attrs)


def attribute_prompts(attrs: Attrs, key: str) -> tuple[list[str], int]:
    """The V prompts of ``key`` for this image (one per value of :data:`ATTRIBUTE_VALUES`, the rest of the
    image's attributes kept) and the index of its true value."""
    values = ATTRIBUTE_VALUES[key]
    if attrs[key] not in values:
        raise ValueError(f"attribute {key}={attrs[key]!r} is not one of {values}")
    prompts = [PROMPT_PREFIX + attribute_phrase({**attrs, key: v}, key) for v in values]
    return prompts, values.index(attrs[key])


def swap_colours(attrs: Attrs, a: str = "upper_colour", b: str = "lower_colour") -> dict[str, str] | None:
    """The attributes with the values of ``a`` and ``b`` exchanged; None when they are equal (no test)."""
    if attrs[a] == attrs[b]:
        return None
    return {**attrs, a: attrs[b], b: attrs[a]}


def binding_captions(attrs: Attrs, view: str) -> tuple[str, str] | None:
    """(caption, the same caption with the upper and lower colours swapped); None when the colours agree."""
    swapped = swap_colours(attrs)
    return None if swapped is None else (caption(attrs, view), caption(swapped, view))


def part_texts(template: str = "{part}") -> list[str]:
    """One text per part of :data:`PARTS` (``template`` with ``{part}`` = its words)."""
    if "{part}" not in template:
        raise ValueError(f"part template {template!r} has no {{part}} field")
    return [template.format(part=PART_WORDS[p]) for p in PARTS]

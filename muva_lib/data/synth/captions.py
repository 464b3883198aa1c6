"""Varied captions for the pretraining corpus: several phrasings, shuffled order, synonyms, and part captions.

The benchmark writes one fixed template per image (:func:`identity.caption`); pretraining needs text
that teaches words rather than a template. Per image, :func:`image_captions` returns

* ``FULL_PER_IMAGE`` (2) whole-person captions, each one of five phrasings with its clauses in a
  random order and a synonym drawn for each garment ("t-shirt" / "tee" / "short-sleeved shirt",
  "trousers" / "pants" / "slacks", "grey" / "gray" ...);
* for a share ``part_share`` of the images (default :data:`PART_SHARE` = 0.5, drawn per image), one
  part caption for each part at least :data:`MIN_VISIBLE` visible, naming the part the way the
  methods' part prompts do: "upper body: a red striped shirt and a beige backpack", "legs: blue
  trousers and white shoes", "head: short black hair under a red cap".

So with the default share at most 3 in 7 caption-image pairs are part captions (2 whole-person captions
per image, 3 part captions on half of them), fewer where parts are hidden; ``synth-pretrain`` prints
the measured shares. Whole-person captions fit a text context of 40 CLIP BPE tokens (start and end
included; median 34, the benchmark's caption 31), part captions 20. Colours always stay next to their
garment and the part names stay the canonical ``head`` / ``upper body`` / ``legs`` (MUVA's part prompts). The skin tone belongs to no part
(it shows on face, arms and legs) and appears only in whole-person captions, never from behind.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .identity import caption as canonical_caption, with_article

__all__ = ["Caption", "CAPTION_PARTS", "PART_NAMES", "PART_SHARE", "MIN_VISIBLE", "FULL_PER_IMAGE", "MAX_WORDS",
           "full_caption", "part_caption", "image_captions", "word_count"]

#: what a caption describes: the whole person or one part
CAPTION_PARTS: tuple[str, ...] = ("full", "head", "upper", "legs")
#: the words a part caption names its part with (the methods' part prompts use the same)
PART_NAMES: dict[str, str] = {"head": "head", "upper": "upper body", "legs": "legs"}
PART_SHARE = 0.5
MIN_VISIBLE = 0.5
FULL_PER_IMAGE = 2
#: a whole-person caption is drawn again while it has more words and marks than this (CLIP's BPE splits at
#: most 4 of our words in two, so it fits a text context of 40 with the start and end tokens)
MAX_WORDS = 34
_TRIES = 20
_WORD = re.compile(r"[a-z]+|[^a-z\s]")

_SUBJECTS = {
    "front": ("a person", "a pedestrian", "a person facing the camera", "someone walking towards the camera"),
    "back": ("a person seen from behind", "a pedestrian seen from the back", "someone walking away"),
    "side": ("a person seen from the side", "a pedestrian in profile", "someone walking past"),
}
_COLOUR = {"grey": ("grey", "gray")}
_HAIR_COLOUR = {"grey": ("grey", "gray"), "blonde": ("blonde", "blond")}
_GARMENT = {"short": ("t-shirt", "tee", "short-sleeved shirt"),
            "long": ("long-sleeved shirt", "long-sleeve top", "long-sleeved top")}
_PATTERN = {"stripes": ("{c} striped {g}", "{c} {g} with stripes"),
            "checks": ("{c} checked {g}", "{c} plaid {g}", "{c} checkered {g}"),
            "plain": ("{c} {g}", "plain {c} {g}")}
_HAT = {"cap": ("cap", "baseball cap"), "beanie": ("beanie", "woolly hat", "knit hat")}
_BAG = {"backpack": ("backpack", "rucksack"), "shoulder": ("shoulder bag", "messenger bag")}
_LOWER = {"trousers": ("trousers", "pants", "slacks"), "shorts": ("shorts",), "skirt": ("skirt",)}
_SHOES = ("shoes", "sneakers", "footwear")
_SKIN = ("{s} skin", "a {s} skin tone", "a {s} complexion")
_HAIR = ("{st} {c} hair", "{c} hair worn {st}")
_HAT_ON_HAIR = ("{hat} over {hair}", "{hair} under {hat}")


@dataclass(frozen=True)
class Caption:
    """One caption of an image and what it describes (one of :data:`CAPTION_PARTS`)."""

    text: str
    part: str


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _colour(rng: np.random.Generator, name: str, table: Mapping[str, tuple[str, ...]] = _COLOUR) -> str:
    return _pick(rng, table.get(name, (name,)))


def _phrases(a: Mapping[str, str], rng: np.random.Generator) -> dict[str, list[str]]:
    """Noun phrases per part (``head``, ``upper``, ``legs``, ``skin``), synonyms drawn; bag and hat only when worn."""
    hair = _pick(rng, _HAIR).format(st=a["hair_style"], c=_colour(rng, a["hair_colour"], _HAIR_COLOUR))
    if a["hat"] != "none":
        hat = with_article(f"{_colour(rng, a['hat_colour'])} {_pick(rng, _HAT[a['hat']])}")
        hair = _pick(rng, _HAT_ON_HAIR).format(hat=hat, hair=hair)
    garment = _pick(rng, _PATTERN[a["upper_pattern"]]).format(c=_colour(rng, a["upper_colour"]),
                                                             g=_pick(rng, _GARMENT[a["sleeves"]]))
    upper = [with_article(garment)]
    if a["bag"] != "none":
        upper.append(with_article(f"{_colour(rng, a['bag_colour'])} {_pick(rng, _BAG[a['bag']])}"))
    lower = f"{_colour(rng, a['lower_colour'])} {_pick(rng, _LOWER[a['lower_type']])}"
    legs = [with_article(lower) if a["lower_type"] == "skirt" else lower,
            f"{_colour(rng, a['shoes_colour'])} {_pick(rng, _SHOES)}"]
    return {"head": [hair], "upper": upper, "legs": legs, "skin": [_pick(rng, _SKIN).format(s=a["skin"])]}


def _shuffled(rng: np.random.Generator, items: list[str]) -> list[str]:
    return [items[i] for i in rng.permutation(len(items))]


def word_count(text: str) -> int:
    """Words and punctuation marks of a caption (a lower bound of its BPE token count)."""
    return len(_WORD.findall(text))


def full_caption(attrs: Mapping[str, str], view: str, rng: np.random.Generator) -> str:
    """A whole-person caption of one of five phrasings, clauses in random order (no skin from behind), at most
    :data:`MAX_WORDS` words and marks: drawn again while longer, after 20 draws the benchmark's caption."""
    if view not in _SUBJECTS:
        raise ValueError(f"unknown view {view!r}; expected one of {', '.join(_SUBJECTS)}")
    for _ in range(_TRIES):
        text = _full_caption(attrs, view, rng)
        if word_count(text) <= MAX_WORDS:
            return text
    return canonical_caption(attrs, view)


def _full_caption(attrs: Mapping[str, str], view: str, rng: np.random.Generator) -> str:
    p = _phrases(attrs, rng)
    subject = _pick(rng, _SUBJECTS[view])
    skin = [] if view == "back" else p["skin"]
    clothes = p["upper"][:1] + p["legs"]
    template = int(rng.integers(5))
    if template == 0:  # "[a photo of] <subject> with <everything>"
        subject = ("", "a photo of ")[int(rng.integers(2))] + subject
        return f"{subject} with {_join(_shuffled(rng, skin + p['head'] + p['upper'] + p['legs']))}"
    if template == 1:  # "<subject> wearing <clothes>, carrying <bag>, with <hair>"
        bag = f", carrying {p['upper'][1]}" if len(p["upper"]) > 1 else ""
        return f"{subject} wearing {_join(_shuffled(rng, clothes))}{bag}, with {_join(_shuffled(rng, p['head'] + skin))}"
    if template == 2:  # "<subject> in <upper garment> and <lower>, with ..."
        rest = _shuffled(rng, p["head"] + p["upper"][1:] + p["legs"][1:] + skin)
        return f"{subject} in {p['upper'][0]} and {p['legs'][0]}, with {_join(rest)}"
    if template == 3:  # one clause per part, parts in random order
        clauses = {"head": f"has {p['head'][0]}", "upper": f"wears {_join(p['upper'])}",
                   "legs": f"wears {_join(p['legs'])}"}
        order = _shuffled(rng, list(clauses))
        return f"{subject}; {'; '.join(clauses[k] for k in order)}" + (f"; {skin[0]}" if skin else "")
    return f"{_join(_shuffled(rng, p['upper'] + p['legs']))} on {subject} with {_join(p['head'] + skin)}"


def part_caption(attrs: Mapping[str, str], part: str, rng: np.random.Generator) -> str:
    """A caption of one part (``head``, ``upper`` or ``legs``) that names it: "legs: blue trousers and white shoes"."""
    if part not in PART_NAMES:
        raise ValueError(f"unknown part {part!r}; expected one of {', '.join(PART_NAMES)}")
    desc = _join(_shuffled(rng, _phrases(attrs, rng)[part]))
    form = int(rng.integers(3))
    name = PART_NAMES[part]
    return (f"{name}: {desc}", f"the {name}: {desc}", f"{name} with {desc}")[form]


def image_captions(attrs: Mapping[str, str], view: str, visible: Mapping[str, float], rng: np.random.Generator,
                   *, part_share: float = PART_SHARE, full: int = FULL_PER_IMAGE,
                   min_visible: float = MIN_VISIBLE) -> list[Caption]:
    """The captions of one image: ``full`` whole-person ones, then, with probability ``part_share``, one per
    part whose ``visible`` fraction is at least ``min_visible`` (in head, upper, legs order)."""
    out = [Caption(full_caption(attrs, view, rng), "full") for _ in range(full)]
    if rng.random() < part_share:
        out += [Caption(part_caption(attrs, part, rng), part) for part in PART_NAMES
                if visible.get(part, 0.0) >= min_visible]
    return out

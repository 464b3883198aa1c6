"""Identities of the synthetic benchmark: per-part attributes, one-part families, captions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

__all__ = ["SKIN", "HAIR", "CLOTH", "SHOES", "PART_KEYS", "ATTRIBUTE_KEYS", "Priors",
           "Identity", "sample_attributes", "sample_families", "caption", "differing_parts", "with_article"]

RGB = tuple[int, int, int]

#: skin tones, hair colours, clothing colours and shoe colours: name -> sRGB
SKIN: dict[str, RGB] = {"light": (236, 200, 172), "medium": (202, 156, 116), "tan": (160, 112, 74),
                        "dark": (96, 62, 42)}
HAIR: dict[str, RGB] = {"black": (28, 24, 22), "brown": (96, 58, 32), "blonde": (214, 182, 112),
                        "grey": (150, 150, 150), "auburn": (150, 64, 28)}
CLOTH: dict[str, RGB] = {
    "black": (32, 32, 34), "white": (232, 232, 226), "grey": (128, 128, 130), "red": (186, 36, 38),
    "blue": (42, 76, 168), "green": (44, 128, 66), "yellow": (222, 190, 44), "brown": (112, 74, 42),
    "pink": (226, 138, 168), "purple": (108, 58, 138), "orange": (228, 118, 32), "beige": (196, 176, 136),
}
#: shoe colours (names of :data:`CLOTH`)
SHOES: tuple[str, ...] = ("black", "white", "brown", "grey", "red", "blue")

HAIR_STYLES = ("short", "long")
HATS = ("cap", "beanie")
PATTERNS = ("plain", "stripes", "checks")
SLEEVES = ("short", "long")
BAGS = ("backpack", "shoulder")
LOWER_TYPES = ("trousers", "shorts", "skirt")

#: the attributes of each body part; a family of identities varies the keys of one part only.
#: ``skin`` belongs to no part (it shows on face, arms and legs) and is shared by a family.
PART_KEYS: dict[str, tuple[str, ...]] = {
    "head": ("hair_colour", "hair_style", "hat", "hat_colour"),
    "upper": ("upper_colour", "upper_pattern", "sleeves", "bag", "bag_colour"),
    "legs": ("lower_type", "lower_colour", "shoes_colour"),
}
ATTRIBUTE_KEYS: tuple[str, ...] = ("skin",) + tuple(k for keys in PART_KEYS.values() for k in keys)


@dataclass(frozen=True)
class Priors:
    """A domain's clothing habits ("season"): probabilities of each garment choice."""

    short_sleeves: float = 0.5
    shorts: float = 0.2
    skirt: float = 0.1
    hat: float = 0.25
    bag: float = 0.4


@dataclass(frozen=True)
class Identity:
    """One identity: its attributes, its family index and the part its family varies."""

    attributes: Mapping[str, str]
    family: int
    varying_part: str


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def _sample_part(part: str, rng: np.random.Generator, priors: Priors) -> dict[str, str]:
    """Attributes of one part, canonical: an absent hat or bag has colour "none"."""
    cloth = list(CLOTH)
    if part == "head":
        hat = _pick(rng, HATS) if rng.random() < priors.hat else "none"
        return {"hair_colour": _pick(rng, list(HAIR)), "hair_style": _pick(rng, HAIR_STYLES),
                "hat": hat, "hat_colour": _pick(rng, cloth) if hat != "none" else "none"}
    if part == "upper":
        bag = _pick(rng, BAGS) if rng.random() < priors.bag else "none"
        return {"upper_colour": _pick(rng, cloth), "upper_pattern": _pick(rng, PATTERNS),
                "sleeves": "short" if rng.random() < priors.short_sleeves else "long",
                "bag": bag, "bag_colour": _pick(rng, cloth) if bag != "none" else "none"}
    if part == "legs":
        u = rng.random()
        lower = "shorts" if u < priors.shorts else "skirt" if u < priors.shorts + priors.skirt else "trousers"
        return {"lower_type": lower, "lower_colour": _pick(rng, cloth), "shoes_colour": _pick(rng, SHOES)}
    raise KeyError(f"unknown part {part!r}; expected one of {sorted(PART_KEYS)}")


def sample_attributes(rng: np.random.Generator, priors: Priors) -> dict[str, str]:
    """A random identity: ``{key: value}`` over :data:`ATTRIBUTE_KEYS`."""
    attrs = {"skin": _pick(rng, list(SKIN))}
    for part in PART_KEYS:
        attrs.update(_sample_part(part, rng, priors))
    return {k: attrs[k] for k in ATTRIBUTE_KEYS}


def _key(attrs: Mapping[str, str], keys: tuple[str, ...] = ATTRIBUTE_KEYS) -> tuple[str, ...]:
    return tuple(attrs[k] for k in keys)


def sample_families(rng: np.random.Generator, n_ids: int, family_size: int, priors: Priors,
                    taken: set[tuple[str, ...]], first_family: int = 0) -> list[Identity]:
    """``n_ids`` distinct identities in families of ``family_size`` (the last one may be smaller).

    A family shares a base outfit; its members differ pairwise in the attributes of one part
    (head, upper or legs, chosen per family in turn) and share everything else, so the global
    look does not tell them apart. ``taken`` (identity keys already used) is updated in place.
    """
    parts = tuple(PART_KEYS)
    out: list[Identity] = []
    fam = first_family
    while len(out) < n_ids:
        size = min(max(1, family_size), n_ids - len(out))
        part = parts[int(rng.integers(len(parts)))]
        for _ in range(1000):
            base = sample_attributes(rng, priors)
            if _key(base) not in taken:
                break
        else:
            raise RuntimeError("cannot draw a new identity: the attribute space is exhausted")
        members = [base]
        seen_parts = {_key(base, PART_KEYS[part])}
        tries = 0
        while len(members) < size:
            tries += 1
            if tries > 1000:
                raise RuntimeError(f"cannot vary part {part!r} {size} ways for family {fam}")
            cand = {**base, **_sample_part(part, rng, priors)}
            pk = _key(cand, PART_KEYS[part])
            if pk in seen_parts or _key(cand) in taken:
                continue
            seen_parts.add(pk)
            members.append(cand)
        for attrs in members:
            taken.add(_key(attrs))
            out.append(Identity(attrs, fam, part))
        fam += 1
    return out


def differing_parts(a: Mapping[str, str], b: Mapping[str, str]) -> set[str]:
    """The parts (and ``"skin"``) in which two attribute dicts differ."""
    diff = {k for k in ATTRIBUTE_KEYS if a[k] != b[k]}
    return {p for p, keys in PART_KEYS.items() if diff & set(keys)} | ({"skin"} & diff)


def with_article(phrase: str) -> str:
    """``phrase`` after "a" or "an" (by its first letter)."""
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def caption(attrs: Mapping[str, str], view: str) -> str:
    """One sentence describing the identity as seen from ``view`` (front | back | side).

    The face (skin) clause is dropped from the back, where the face is not visible.
    """
    subject = {"front": "a person", "back": "a person seen from behind", "side": "a person seen from the side"}
    if view not in subject:
        raise ValueError(f"unknown view {view!r}; expected front, back or side")
    hair = f"{attrs['hair_style']} {attrs['hair_colour']} hair"
    items = [] if view == "back" else [f"{attrs['skin']} skin"]
    hat = with_article(attrs["hat_colour"] + " " + attrs["hat"])
    items.append(hair if attrs["hat"] == "none" else f"{hat} over {hair}")
    pattern = {"plain": "", "stripes": "striped ", "checks": "checked "}[attrs["upper_pattern"]]
    garment = "t-shirt" if attrs["sleeves"] == "short" else "long-sleeved shirt"
    items.append(with_article(f"{attrs['upper_colour']} {pattern}{garment}"))
    if attrs["bag"] != "none":
        bag = "backpack" if attrs["bag"] == "backpack" else "shoulder bag"
        items.append(with_article(f"{attrs['bag_colour']} {bag}"))
    lower = f"{attrs['lower_colour']} {attrs['lower_type']}"
    items.append(with_article(lower) if attrs["lower_type"] == "skirt" else lower)
    items.append(f"{attrs['shoes_colour']} shoes")
    return f"{subject[view]} with {', '.join(items[:-1])} and {items[-1]}"

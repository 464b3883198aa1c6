"""Parsing class sets and their grouping into the part classes pi-VL prompts name (background, head, ...).

The default grouping of the LIP / SCHP 20-class index order (ours: pi-VL's own grouping is not
recoverable from the paper) is::

    0 background                                  -> background (0)
    1 hat, 2 hair, 4 sunglasses, 13 face          -> head       (1)
    3 glove, 5 upper-clothes, 6 dress, 7 coat,
    10 jumpsuits, 11 scarf, 14 left-arm, 15 right-arm -> upper  (2)
    8 socks, 9 pants, 12 skirt, 16 left-leg, 17 right-leg -> lower (3)
    18 left-shoe, 19 right-shoe                   -> shoes      (4)

The synthetic benchmark's own classes (``muva_lib.data.synthetic.PARSING_CLASSES``) group the same
way: hair + face -> head, arms + upper clothes + bag -> upper, lower clothes + legs -> lower,
shoes -> shoes, background and occluders -> background. The ``pose`` source (a person mask cut into
head / upper / legs slabs, :func:`muva_lib.grounding.backends.pose.coarse_parsing`) maps one to one onto
head, upper and lower, with no shoes. A custom grouping is a string
``"head=1,2,4,13;upper=3,5,6,7;..."`` (source class indices per part class, in part order;
classes not named are background).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LIP_CLASSES", "DEFAULT_PART_CLASSES", "PART_WORDS", "LIP_GROUPING", "SYNTH_GROUPING", "POSE_GROUPING",
           "GROUPINGS", "Grouping", "parse_grouping", "resolve_grouping"]

#: LIP / SCHP class names in index order (20 classes)
LIP_CLASSES: tuple[str, ...] = (
    "background", "hat", "hair", "glove", "sunglasses", "upper-clothes", "dress", "coat", "socks", "pants",
    "jumpsuits", "scarf", "skirt", "face", "left-arm", "right-arm", "left-leg", "right-leg", "left-shoe",
    "right-shoe")
#: the part classes after grouping, index 0 = background (never prompted)
DEFAULT_PART_CLASSES: tuple[str, ...] = ("background", "head", "upper", "lower", "shoes")
#: the words a part-informed prompt uses for a part class ("A photo of a X X X X person, upper body.")
PART_WORDS: dict[str, str] = {"head": "head", "upper": "upper body", "lower": "lower body", "shoes": "shoes"}


@dataclass(frozen=True)
class Grouping:
    """Source classes -> part classes. ``parts`` excludes background; ``members[i]`` are the source
    class indices of ``parts[i]`` (part class ``i + 1``); ``num_source`` is the source's class count."""

    parts: tuple[str, ...]
    members: tuple[tuple[int, ...], ...]
    num_source: int

    def __post_init__(self) -> None:
        seen: dict[int, str] = {}
        for part, ids in zip(self.parts, self.members):
            for c in ids:
                if not 0 <= c < self.num_source:
                    raise ValueError(f"grouping: class {c} of {part!r} is outside 0..{self.num_source - 1}")
                if c in seen:
                    raise ValueError(f"grouping: class {c} is in both {seen[c]!r} and {part!r}")
                seen[c] = part

    @property
    def num_parts(self) -> int:
        """Part classes without background (P)."""
        return len(self.parts)

    @property
    def class_names(self) -> tuple[str, ...]:
        """``("background", *parts)``: the names of the grouped labels 0..P."""
        return ("background", *self.parts)

    def lut(self) -> np.ndarray:
        """Lookup table uint8 [num_source]: source class -> part class (0 = background)."""
        out = np.zeros(self.num_source, np.uint8)
        for i, ids in enumerate(self.members, 1):
            out[list(ids)] = i
        return out

    def words(self) -> tuple[str, ...]:
        """The prompt words of the parts (:data:`PART_WORDS`, else the part name itself)."""
        return tuple(PART_WORDS.get(p, p.replace("_", " ")) for p in self.parts)

    def describe(self) -> str:
        """The grouping as the string :func:`parse_grouping` reads."""
        return ";".join(f"{p}={','.join(map(str, ids))}" for p, ids in zip(self.parts, self.members))


LIP_GROUPING = Grouping(DEFAULT_PART_CLASSES[1:], ((1, 2, 4, 13), (3, 5, 6, 7, 10, 11, 14, 15), (8, 9, 12, 16, 17),
                                                   (18, 19)), len(LIP_CLASSES))
# synthetic classes: background, hair, face, arms, upper_clothes, bag, lower_clothes, legs, shoes, occluder
SYNTH_GROUPING = Grouping(DEFAULT_PART_CLASSES[1:], ((1, 2), (3, 4, 5), (6, 7), (8,)), 10)
# the pose source's coarse classes (muva_lib.grounding.backends.pose.COARSE_CLASSES): background, head,
# upper, legs; it has no shoes class (the pose model's feet are rarely visible in the real crops)
POSE_GROUPING = Grouping(DEFAULT_PART_CLASSES[1:4], ((1,), (2,), (3,)), 4)
GROUPINGS: dict[str, Grouping] = {"lip": LIP_GROUPING, "synth": SYNTH_GROUPING, "pose": POSE_GROUPING}


def parse_grouping(spec: str, num_source: int) -> Grouping:
    """``"head=1,2;upper=5,7"`` -> :class:`Grouping` over ``num_source`` source classes."""
    parts, members = [], []
    for chunk in (c.strip() for c in spec.split(";")):
        if not chunk:
            continue
        if "=" not in chunk:
            raise ValueError(f"grouping {spec!r}: {chunk!r} is not of the form part=i,j,...")
        name, ids = (s.strip() for s in chunk.split("=", 1))
        try:
            members.append(tuple(int(i) for i in ids.split(",") if i.strip()))
        except ValueError:
            raise ValueError(f"grouping {spec!r}: {ids!r} are not class indices") from None
        if not name or name == "background" or name in parts:
            raise ValueError(f"grouping {spec!r}: bad or repeated part name {name!r}")
        parts.append(name)
    if not parts:
        raise ValueError(f"grouping {spec!r} names no part")
    return Grouping(tuple(parts), tuple(members), num_source)


def resolve_grouping(name: str, default: str, num_source: int) -> Grouping:
    """``auto`` -> the source's ``default``; a name of :data:`GROUPINGS`; else a custom spec string."""
    key = default if name in ("", "auto") else name
    if key in GROUPINGS:
        g = GROUPINGS[key]
        if g.num_source != num_source:
            raise ValueError(f"grouping {key!r} is for {g.num_source} source classes, the source has {num_source}")
        return g
    return parse_grouping(key, num_source)

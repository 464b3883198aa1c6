"""The backend contract: ``ground(images, items) -> [{part: Answer}]``, one answer per part per image."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from PIL import Image

from ...data.types import PARTS, Item
from ...geometry.boxes import Box, as_box

__all__ = ["Answer", "Backend", "STATUSES", "failed_answers"]

#: ``ok``: a usable box came out; ``fallback``: an answer came but gave no usable box (garbage,
#: NaN, ...), calibration fills the part from the prior; ``failed``: the backend raised for this
#: image (no answer at all), also filled from the prior.
STATUSES: tuple[str, ...] = ("ok", "fallback", "failed")


@dataclass(frozen=True)
class Answer:
    """One part of one image: the raw answer (model text or a description of the source), the
    parsed box in pixels of the original image (``None`` unless ``status == "ok"``), the status
    and the reason for any change (``""`` when the answer was used as is)."""

    raw: str
    box: Box | None
    status: str
    reason: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"answer status must be one of {STATUSES}, got {self.status!r}")
        if (self.box is None) == (self.status == "ok"):
            raise ValueError(f"an {self.status!r} answer {'needs' if self.status == 'ok' else 'has no'} box")

    def to_dict(self) -> dict[str, Any]:
        return {"raw": self.raw, "box": None if self.box is None else [round(v, 3) for v in self.box],
                "status": self.status, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Answer":
        return cls(str(d.get("raw", "")), as_box(d.get("box")), str(d["status"]), str(d.get("reason", "")))


def failed_answers(error: BaseException | str, parts: Sequence[str] = PARTS) -> dict[str, Answer]:
    """What an image gets when its backend call raised: every part ``failed`` with the error."""
    msg = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return {p: Answer("", None, "failed", f"backend error: {msg}"[:300]) for p in parts}


class Backend:
    """Base class of the grounding backends.

    Subclasses set ``name`` and implement :meth:`ground`. ``images`` are PIL images opened by the
    runner (maybe lazily: call ``.convert("RGB")`` before reading pixels; ``.size`` is ``(W, H)``);
    ``items`` are the matching dataset items. Return one ``{part: Answer}`` per image, every part
    present. Bad model output must end as ``fallback`` answers, never as an exception; an
    exception fails the whole batch, which the runner then retries image by image.
    """

    name: ClassVar[str] = ""
    #: images per :meth:`ground` call chosen by the runner
    batch_size: int = 32

    def __init__(self, parts: Sequence[str] = PARTS) -> None:
        self.parts = tuple(parts)

    @property
    def tag(self) -> str:
        """File-name stem of this backend's store (``synthetic-paper``, ``mllm-<model>`` ...)."""
        return self.name

    def describe(self) -> dict[str, Any]:
        """What produced the answers (written next to the store, shown by the CLI)."""
        return {"backend": self.name, "tag": self.tag}

    def check(self, items: Sequence[Item]) -> None:
        """Refuse, before any grounding, items this backend cannot answer for at all (``ValueError``
        naming the dataset and what to use instead); per-image trouble stays a recorded failure."""

    def ground(self, images: Sequence[Image.Image], items: Sequence[Item]) -> list[dict[str, Answer]]:
        raise NotImplementedError

"""The reader contract: registry, image checks, Market-style name parsing, relabelling.

A reader knows one dataset's folder layout and nothing else. Its ``collect`` lists the raw
items; ``read`` returns a :class:`Split` of :class:`Item` with absolute ``path``,
dataset-relative ``relpath``, training pids relabelled 0..N-1, junk (pid -1) dropped,
distractors (pid 0) kept in the gallery; ``read_all`` returns every image as one training set.
"""
from __future__ import annotations

import inspect
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, ClassVar, Iterable, Sequence

from ..errors import DatasetError, UnreadableImageWarning
from ..types import Item, Split

__all__ = [
    "DatasetError", "UnreadableImageWarning", "Reader", "READERS", "register", "get_reader",
    "list_readers", "read_dataset", "check_image", "read_image", "decode_problem", "ImageCheck", "relabel", "market_style_items",
    "MARKET_NAME", "parse_market_name", "IMAGE_SUFFIXES", "Subsets", "list_images", "has_images", "match_name",
    "check_camera", "describe", "layout_markdown",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

#: How to make unreadable images errors, for every message that mentions it.
STRICT_HINT = ("Set data.strict=true (a key=value override of train / eval / run; "
               "strict=True in read_dataset / build)")


# ----------------------------------------------------------------------------- image checks

@dataclass
class ImageCheck:
    """Collects unreadable images while a reader walks a tree; ``finish`` warns or raises once."""

    dataset: str
    strict: bool = False

    def __post_init__(self) -> None:
        self.bad: list[tuple[str, str]] = []

    def ok(self, path: str | Path) -> bool:
        """True when the file looks like a complete image; otherwise record it (or raise if strict)."""
        problem = check_image(path)
        if problem is None:
            return True
        self.fail(path, problem)
        return False

    def fail(self, path: str | Path, problem: str) -> None:
        """Record an image found bad some other way (e.g. it failed to decode); raise if strict."""
        if self.strict:
            raise DatasetError(f"{self.dataset}: unreadable image {path}: {problem}")
        self.bad.append((str(path), problem))

    def finish(self) -> None:
        if self.bad:
            first = "; ".join(f"{p} ({why})" for p, why in self.bad[:3])
            more = f" and {len(self.bad) - 3} more" if len(self.bad) > 3 else ""
            warnings.warn(
                f"{self.dataset}: skipped {len(self.bad)} unreadable image(s): {first}{more}. "
                f"{STRICT_HINT} to stop at the first one.",
                UnreadableImageWarning,
                stacklevel=3,
            )


def check_image(path: str | Path) -> str | None:
    """Cheap completeness check without decoding: None when fine, else the problem in words.

    Reads the first and last bytes only: JPEG must start with FFD8 and end with FFD9 (trailing
    zero padding tolerated), PNG must start with its signature and end with an IEND chunk,
    BMP must start with ``BM`` and be as long as its header says. This catches empty and
    truncated files at a cost of two small reads per image.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size == 0:
            return "empty file"
        with open(path, "rb") as fh:
            head = fh.read(16)
            fh.seek(max(0, size - 64))
            tail = fh.read(64)
    except OSError as exc:
        return f"cannot open ({exc.strerror or exc})"
    if head[:2] == b"\xff\xd8":
        if b"\xff\xd9" not in tail.rstrip(b"\x00")[-16:]:
            return "truncated JPEG (no end-of-image marker)"
        return None
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        if b"IEND" not in tail[-12:]:
            return "truncated PNG (no IEND chunk)"
        return None
    if head[:2] == b"BM":
        declared = int.from_bytes(head[2:6], "little")
        if declared and size < declared:
            return f"truncated BMP ({size} of {declared} bytes)"
        return None
    return "not a JPEG, PNG or BMP file"


def read_image(path: str) -> "Image.Image":
    """An RGB PIL image; a file that cannot be decoded raises OSError naming it."""
    from PIL import Image  # deferred like decode_problem's: reading a dataset's file list needs no PIL

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise OSError(f"cannot read image {path}: {exc}") from exc


def decode_problem(path: str | Path) -> str | None:
    """Full decode of the pixel data (what the loaders do): None when it decodes, else the problem in words.

    Catches what :func:`check_image` cannot see from the first and last bytes: a file whose header
    and end marker are intact but whose pixel data is cut or corrupt.
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
    except (OSError, ValueError, SyntaxError) as exc:  # PIL raises SyntaxError for some broken headers
        return f"cannot decode ({exc})"
    return None


# ----------------------------------------------------------------------------- names and labels

#: Market-1501 style: ``0002_c1s1_000451_03.jpg``, ``-1_c3s2_...`` (junk), ``0000_...`` (distractor);
#: MSMT17 / CUHK03-NP re-exports use the same ``pid_cCAM`` head with multi-digit cameras.
MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")


def match_name(path: str | Path, pattern: re.Pattern[str], expected: str) -> re.Match[str]:
    """Match a file name against ``pattern`` or raise a DatasetError naming the file and ``expected``."""
    m = pattern.match(Path(path).name)
    if m is None:
        raise DatasetError(f"{path}: file name does not match the expected pattern {expected}")
    return m


def parse_market_name(path: str | Path) -> tuple[int, int]:
    """``(pid, camid)`` from a Market-style file name; camid is returned as written (1-based)."""
    m = match_name(path, MARKET_NAME, "'PID_cCAM...' of Market-1501")
    return int(m.group(1)), int(m.group(2))


def relabel(items: Sequence[Item]) -> tuple[Item, ...]:
    """Map the raw training pids to 0..N-1 in sorted order of the raw ids (deterministic)."""
    mapping = {pid: i for i, pid in enumerate(sorted({it.pid for it in items}))}
    return tuple(replace(it, pid=mapping[it.pid]) for it in items)


def list_images(folder: Path) -> list[Path]:
    """Image files (by suffix) directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def has_images(folder: Path) -> bool:
    """True when ``folder`` holds an image file (by suffix) at any depth; stops at the first one."""
    return any(p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() for p in folder.rglob("*"))



def check_camera(path: str | Path, cam: int, cam_range: tuple[int, int] | None, dataset: str) -> None:
    """Raise when a 1-based camera number parsed from ``path`` is outside ``cam_range`` (inclusive)."""
    if cam_range is not None and not (cam_range[0] <= cam <= cam_range[1]):
        raise DatasetError(f"{path}: camera {cam} outside {cam_range[0]}..{cam_range[1]} for {dataset}")


def market_style_items(root: Path, subdir: str, dataset: str, check: ImageCheck,
                       cam_range: tuple[int, int] | None = None, keep_distractors: bool = True,
                       ) -> list[Item]:
    """Items of one Market-style folder (``bounding_box_train``, ``query``, ``bounding_box_test``).

    Junk (pid -1) is dropped; distractors (pid 0) kept only when ``keep_distractors``. Camera ids
    are returned 0-based. ``cam_range`` (inclusive, 1-based) rejects impossible cameras.
    """
    folder = root / subdir
    if not folder.is_dir():
        raise DatasetError(f"{dataset}: missing folder {folder}")
    out: list[Item] = []
    for path in list_images(folder):
        pid, cam = parse_market_name(path)
        if pid == -1 or (pid == 0 and not keep_distractors):
            continue
        check_camera(path, cam, cam_range, dataset)
        if not check.ok(path):
            continue
        out.append(Item(str(path), pid, cam - 1, dataset, path.relative_to(root).as_posix()))
    return out


# ----------------------------------------------------------------------------- the registry

@dataclass
class Subsets:
    """What :meth:`Reader.collect` returns: raw train / query / gallery items (pids not relabelled)."""

    train: list[Item]
    query: list[Item]
    gallery: list[Item]
    meta: dict = field(default_factory=dict)


class Reader:
    """Base class: subclasses set ``name``, ``folder``, ``url`` and implement :meth:`collect`.

    ``root`` is the dataset's own folder (``<raw_root>/<folder>`` by default). The class
    docstring of each reader documents the layout it expects; the README repeats it.
    :meth:`read` gives one split (training pids relabelled); :meth:`read_all` gives every image
    of the dataset as one relabelled training set (classical multi-source protocols).
    """

    name: ClassVar[str] = ""
    folder: ClassVar[str] = ""
    url: ClassVar[str] = ""
    #: number of seeded splits (small datasets); 1 for datasets with a fixed split
    num_splits: ClassVar[int] = 1
    #: the pid of gallery distractors (excluded by :meth:`read_all`); None when the dataset has none
    distractor_pid: ClassVar[int | None] = 0
    #: the folders (each must hold images) and files the layout needs, relative to ``root``
    required: ClassVar[tuple[str, ...]] = ()

    def __init__(self, root: str | Path | None = None, strict: bool = False) -> None:
        from ...paths import raw_root

        self.root = Path(root) if root is not None else raw_root() / self.folder
        self.strict = strict

    def collect(self, split_index: int = 0) -> Subsets:  # pragma: no cover - abstract
        """Raw items of one split: junk dropped, distractors in the gallery, pids as in the data."""
        raise NotImplementedError

    def read(self, split_index: int = 0) -> Split:
        """One split: training pids relabelled 0..N-1; empty subsets refused."""
        self.check_split_index(split_index)
        sub = self.collect(split_index)
        return self.finish(sub.train, sub.query, sub.gallery, split_index, sub.meta)

    def read_all(self) -> tuple[Item, ...]:
        """Every image of the dataset (train + query + gallery of split 0), distractors excluded,
        each file once, pids relabelled 0..N-1: the source set of the classical multi-source protocol.
        """
        sub = self.collect(0)
        seen: dict[str, Item] = {}
        for it in (*sub.train, *sub.query, *sub.gallery):
            if it.pid != self.distractor_pid:
                seen.setdefault(it.path, it)
        if not seen:
            raise DatasetError(f"{self.name}: no images found under {self.root}")
        return relabel(list(seen.values()))

    def required_paths(self) -> tuple[str, ...]:
        """The folders (each must hold images, at any depth) and files the layout needs, relative to ``root``."""
        return self.required

    def missing(self) -> list[str]:
        """What keeps the dataset at ``root`` from being read, in words; ``[]`` when its layout is complete
        (the root exists, every :meth:`required_paths` entry exists and each of its folders holds an image)."""
        if not self.root.is_dir():
            return ["no such folder"]
        out = []
        for rel in self.required_paths():
            path = self.root / rel
            if path.is_dir():
                if not has_images(path):
                    out.append(f"{rel}/ holds no images")
            elif not path.is_file():
                out.append(f"no {rel}")
        return out

    def obtain_hint(self) -> str:
        """How to get the dataset, in words."""
        return f"download it from {self.url}" if self.url else "see the reader's layout"

    def require(self, *relative: str) -> None:
        """Raise a DatasetError naming the expected layout and the download page if anything is missing."""
        missing = [r for r in (relative or (".",)) if not (self.root / r).exists()]
        if missing:
            raise DatasetError(
                f"{self.name}: expected {', '.join(str(self.root / m) for m in missing)} to exist.\n"
                f"Download it from {self.url or 'the dataset authors'} and lay it out as:\n"
                f"{self.layout()}\n(set MUVA_RAW or pass root= to point elsewhere)"
            )

    @classmethod
    def layout(cls) -> str:
        """The class docstring: the expected folder layout, in words."""
        return inspect.cleandoc(cls.__doc__ or "")

    def check_split_index(self, split_index: int) -> None:
        if not 0 <= split_index < self.num_splits:
            raise DatasetError(
                f"{self.name}: split index {split_index} out of range 0..{self.num_splits - 1}"
            )

    def finish(self, train: Iterable[Item], query: Iterable[Item], gallery: Iterable[Item],
               split_index: int = 0, meta: dict | None = None) -> Split:
        """Relabel train, refuse empty subsets, and return the Split."""
        train, query, gallery = list(train), list(query), list(gallery)
        for subset, items in (("train", train), ("query", query), ("gallery", gallery)):
            if not items:
                raise DatasetError(f"{self.name}: the {subset} split under {self.root} is empty")
        return Split(self.name, relabel(train), tuple(query), tuple(gallery), split_index=split_index,
                     meta=meta or {})


READERS: dict[str, type[Reader]] = {}


def register(cls: type[Reader]) -> type[Reader]:
    """Class decorator: add a reader to the registry under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in READERS and READERS[cls.name] is not cls:
        raise ValueError(f"reader name {cls.name!r} registered twice")
    READERS[cls.name] = cls
    return cls


def list_readers() -> list[str]:
    return sorted(READERS)


def get_reader(name: str) -> type[Reader]:
    try:
        return READERS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(list_readers())}") from None


def read_dataset(name: str, root: str | Path | None = None, split_index: int = 0,
                 strict: bool = False) -> Split:
    """Read one dataset by registry name."""
    return get_reader(name)(root=root, strict=strict).read(split_index)


def describe(name: str) -> str:
    """Registry name, the folder it reads by default, download page and expected layout of one dataset."""
    cls = get_reader(name)
    return f"{cls.name}: {cls().root}  ({cls.url or 'generated'})\n{cls.layout()}"


_LITERAL = re.compile(r"::\n\n((?:(?: {4}.*)?\n)+)")


def _rst_to_markdown(text: str) -> str:
    """Docstring RST (``code``, ``::`` literal blocks) to Markdown (`code`, fenced blocks)."""
    def fence(m: re.Match[str]) -> str:
        block = "\n".join(line[4:] for line in m.group(1).rstrip("\n").split("\n"))
        return f":\n\n```text\n{block}\n```\n\n"

    return _LITERAL.sub(fence, text.replace("``", "`") + "\n").strip()


def layout_markdown(names: Sequence[str] | None = None) -> str:
    """The README's data section: each real dataset's folder, download page and layout (docstrings)."""
    parts = ["## Data layout", ""]
    for name in names or [n for n in list_readers() if READERS[n].url]:
        cls = get_reader(name)
        title, _, body = cls.layout().partition("\n")
        parts += [f"### `{cls.name}`: {title}", "", f"Download page: <{cls.url}>", "",
                  _rst_to_markdown(body), ""]
    return "\n".join(parts)


ReaderFactory = Callable[..., Reader]

"""CUHK-SYSU person-search scenes cut into re-ID crops from the .mat annotations (cropped once, cached)."""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from ..types import Item
from .derived import derived_candidates, find_derived, write_derived
from .matfile import as_box, as_text, get_field, load_mat, records
from .reader import DatasetError, ImageCheck, Reader, Subsets, register, relabel

__all__ = ["CUHKSYSU", "PersonBox", "person_boxes", "test_boxes"]

_PERSON = ("one struct per identity (a struct array or a cell array of 1x1 structs) with fields "
           "idname ('p1234'), nAppear and scene (struct array with fields imname, idlocate [x y w h], ishard)")
_TEST = ("a 1xN struct array with fields Query (1x1 struct: imname, idlocate, ishard, idname) and "
         "Gallery (struct array: imname, idlocate [x y w h] or empty when the person is absent, ishard)")
_IDNAME = re.compile(r"^p?(\d+)$")


@dataclass(frozen=True)
class PersonBox:
    """One annotated person box: ``box`` is ``(x, y, w, h)`` in pixels of scene ``Image/SSM/<scene>``."""

    pid: int
    scene: str
    box: tuple[int, int, int, int]

    @property
    def crop_name(self) -> str:
        """``PPPPP_SCENE_X_Y_W_H.jpg`` (pid on 5 digits): unique per box, so a cached crop is never stale."""
        x, y, w, h = self.box
        return f"{self.pid:05d}_{Path(self.scene).stem}_{x}_{y}_{w}_{h}.jpg"


def _pid(value: object, path: Path) -> int:
    name = as_text(value, path, "idname")
    m = _IDNAME.match(name.strip())
    if m is None:
        raise DatasetError(f"{path}: idname {name!r} is not of the form 'p1234'")
    return int(m.group(1))


def _scene_box(rec: dict, pid: int, path: Path, expected: str) -> PersonBox | None:
    scene = as_text(get_field(rec, "imname", path, expected), path, "imname")
    box = as_box(get_field(rec, "idlocate", path, expected), path, f"idlocate of p{pid} in {scene}")
    return None if box is None else PersonBox(pid, scene, box)


def person_boxes(path: Path, key: str) -> list[PersonBox]:
    """Every box of every identity in ``Train.mat`` (key ``Train``) or ``Person.mat`` (``Person``)."""
    boxes = []
    for person in records(load_mat(path, key, f"variable {key!r}: {_PERSON}"), path, _PERSON):
        pid = _pid(get_field(person, "idname", path, _PERSON), path)
        for scene in records(get_field(person, "scene", path, _PERSON), path, _PERSON):
            box = _scene_box(scene, pid, path, _PERSON)
            if box is not None:
                boxes.append(box)
    return boxes


def test_boxes(path: Path, key: str = "TestG50") -> tuple[list[PersonBox], list[PersonBox]]:
    """``(query, gallery)`` boxes of a test protocol file: the gallery keeps only scenes showing the person."""
    query, gallery = [], []
    for entry in records(load_mat(path, key, f"variable {key!r}: {_TEST}"), path, _TEST):
        q = records(get_field(entry, "Query", path, _TEST), path, _TEST)
        if len(q) != 1:
            raise DatasetError(f"{path}: a Query holds {len(q)} structs; expected {_TEST}")
        pid = _pid(get_field(q[0], "idname", path, _TEST), path)
        qbox = _scene_box(q[0], pid, path, _TEST)
        if qbox is None:
            raise DatasetError(f"{path}: the query box of p{pid} is empty; expected {_TEST}")
        query.append(qbox)
        for rec in records(get_field(entry, "Gallery", path, _TEST), path, _TEST):
            box = _scene_box(rec, pid, path, _TEST)
            if box is not None:
                gallery.append(box)
    return query, gallery


@register
class CUHKSYSU(Reader):
    """CUHK-SYSU (Xiao et al., CVPR 2017), person search scenes cut into re-ID crops.

    Layout (``data/raw/CUHK-SYSU/``, the original release)::

        Image/SSM/s1.jpg ... s23.jpg ...                  18,184 scene images
        annotation/Person.mat                             all 8,432 labelled identities
        annotation/test/train_test/Train.mat              5,532 training identities
        annotation/test/train_test/TestG50.mat            2,900 queries, 50-scene galleries
        cuhksysu4reid/00001_s1_10_20_50_120.jpg           crops, written here on the first read

    ``Person.mat`` (variable ``Person``) and ``Train.mat`` (``Train``): one struct per identity
    (struct array or cell array of 1x1 structs) with fields ``idname`` ('p1234'), ``nAppear``
    and ``scene``, a struct array with fields ``imname``, ``idlocate`` ([x y w h], pixels, 0-based)
    and ``ishard``. ``TestG50.mat`` (``TestG50``): a struct array with fields ``Query`` (struct
    with imname, idlocate, ishard, idname) and ``Gallery`` (struct array with imname, idlocate,
    ishard; an empty idlocate means the person is not in that scene).

    Every box is cropped once into ``cuhksysu4reid/PPPPP_SCENE_X_Y_W_H.jpg`` (pid on 5 digits;
    written atomically; under ``<data>/crops/cuhksysu/`` if this folder is read-only) and
    re-used afterwards. The dataset has no cameras: train items and queries get camera 0,
    gallery items camera 1 (so the Market rule keeps true matches). Split: train = Train.mat,
    query = TestG50 queries, gallery = their gallery boxes; ``read_all()`` = Person.mat.
    """

    name = "cuhksysu"
    folder = "CUHK-SYSU"
    url = "https://github.com/ShuangLI59/person_search"
    distractor_pid = None
    crop_dir = "cuhksysu4reid"
    scenes = "Image/SSM"
    train_mat = "annotation/test/train_test/Train.mat"
    test_mat = "annotation/test/train_test/TestG50.mat"
    person_mat = "annotation/Person.mat"
    required = (scenes, train_mat, test_mat, person_mat)

    def collect(self, split_index: int = 0) -> Subsets:
        self.require(self.scenes, self.train_mat, self.test_mat)
        train = person_boxes(self.root / self.train_mat, "Train")
        query, gallery = test_boxes(self.root / self.test_mat, "TestG50")
        cropper = _Cropper(self)
        out = Subsets(cropper.items(train, 0), cropper.items(query, 0), cropper.items(gallery, 1),
                      {"crops": str(self.root / self.crop_dir)})
        cropper.check.finish()
        return out

    def read_all(self) -> tuple[Item, ...]:
        """Every labelled box of ``Person.mat`` as one training set, pids relabelled 0..N-1."""
        self.require(self.scenes, self.person_mat)
        cropper = _Cropper(self)
        items = cropper.items(person_boxes(self.root / self.person_mat, "Person"), 0)
        cropper.check.finish()
        if not items:
            raise DatasetError(f"{self.name}: {self.root / self.person_mat} gave no readable person boxes")
        return relabel(items)


class _Cropper:
    """Turns person boxes into items, cropping a scene only when the crop is not cached yet."""

    def __init__(self, reader: CUHKSYSU) -> None:
        self.reader = reader
        self.check = ImageCheck(reader.name, reader.strict)
        self.bad_scenes: set[str] = set()

    def items(self, boxes: list[PersonBox], camid: int) -> list[Item]:
        out = []
        for box in boxes:
            rel = f"{self.reader.crop_dir}/{box.crop_name}"
            candidates = derived_candidates(self.reader.root, rel, f"crops/{self.reader.name}/{box.crop_name}")
            path = find_derived(candidates)
            if path is None:
                data = self._crop(box)
                if data is None:
                    continue
                path = write_derived(candidates, data)
            out.append(Item(str(path), box.pid, camid, self.reader.name, rel))
        return out

    def _crop(self, box: PersonBox) -> bytes | None:
        """JPEG bytes of the box clipped to its scene; None (counted) when the scene is unreadable."""
        from PIL import Image

        scene = self.reader.root / self.reader.scenes / box.scene
        if box.scene in self.bad_scenes:
            return None
        if not self.check.ok(scene):
            self.bad_scenes.add(box.scene)
            return None
        try:
            with Image.open(scene) as img:
                img = img.convert("RGB")
        except (OSError, ValueError) as exc:
            self.check.fail(scene, f"cannot decode ({exc})")
            self.bad_scenes.add(box.scene)
            return None
        x, y, w, h = box.box
        x0, y0, x1, y1 = max(0, x), max(0, y), min(img.width, x + w), min(img.height, y + h)
        if x1 <= x0 or y1 <= y0:
            raise DatasetError(
                f"{scene}: the box [x y w h] = {list(box.box)} of p{box.pid} lies outside the "
                f"{img.width}x{img.height} image"
            )
        buf = io.BytesIO()
        img.crop((x0, y0, x1, y1)).save(buf, "JPEG", quality=95)
        return buf.getvalue()

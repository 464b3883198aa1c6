"""The small target datasets of the classical protocol (GRID, PRID, VIPeR, iLIDS), 10 seeded splits each."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import numpy as np

from ..types import Item
from .matfile import as_ints, load_mat, records
from .reader import DatasetError, ImageCheck, Reader, Subsets, list_images, match_name, register, relabel
from .splits import SPLIT_SEED, check_split_ids, half_splits, load_or_make_splits

__all__ = ["GRID", "PRID", "VIPeR", "ILIDS", "folder_items"]

Parse = Callable[[re.Match[str]], tuple[int, int]]


def folder_items(reader: Reader, subdir: str, pattern: re.Pattern[str], expected: str, *, parse: Parse,
                 check: ImageCheck) -> list[Item]:
    """Items of the images in ``root/subdir``; ``parse`` turns a name match into ``(pid, camid 0-based)``."""
    out = []
    for path in list_images(reader.root / subdir):
        pid, cam = parse(match_name(path, pattern, expected))
        if check.ok(path):
            out.append(Item(str(path), pid, cam, reader.name, path.relative_to(reader.root).as_posix()))
    return out


class _SmallReader(Reader):
    """Shared by the small datasets: 10 splits, half of the paired ids for training."""

    num_splits = 10

    def views(self, check: ImageCheck) -> list[list[Item]]:  # pragma: no cover - abstract
        """Every image, one list per camera folder, raw pids."""
        raise NotImplementedError

    def read_views(self) -> list[list[Item]]:
        check = ImageCheck(self.name, self.strict)
        views = self.views(check)
        check.finish()
        return views

    def read_all(self) -> tuple[Item, ...]:
        """Every image of every camera folder (distractors excluded), pids relabelled 0..N-1."""
        items = [it for view in self.read_views() for it in view if it.pid != self.distractor_pid]
        if not items:
            raise DatasetError(f"{self.name}: no images found under {self.root}")
        return relabel(items)

    def _id_splits(self, paired: list[int]) -> tuple[list[dict], Path]:
        """Seeded ``{"train", "test"}`` id halves of ``paired``, from (or into) the split file."""
        splits, path = load_or_make_splits(
            self, lambda rng: half_splits(rng, paired, self.num_splits, len(paired) // 2))
        check_split_ids(path, splits, "train", paired, len(paired) // 2)
        check_split_ids(path, splits, "test", paired, len(paired) - len(paired) // 2)
        return splits, path

    @staticmethod
    def _meta(source: Path) -> dict:
        return {"splits_file": str(source), "seed": SPLIT_SEED}


GRID_NAME = re.compile(r"^(\d+)_(\d+)_")


@register
class GRID(_SmallReader):
    """QMUL GRID (Loy et al., 2009): 250 paired ids plus 775 gallery distractors, 8 cameras.

    Layout (``data/raw/grid/``, the contents of ``underground_reid.zip``)::

        probe/0001_1_25004_107_32_106_221.jpeg      250 images, ids 1..250
        gallery/0001_2_25023_116_134_128_330.jpeg   1,025 images: ids 1..250 and 775 with id 0000
        features_and_partitions.mat                 optional: the official 10 training partitions

    File name: ``PID_CAM_...jpeg``; camera = the second field (1..8). Each of the 10 splits
    trains on 125 ids (probe and gallery images); query = the probe images of the other 125,
    gallery = their gallery images plus the 775 distractors (pid 0). With
    ``features_and_partitions.mat``, variable ``trainIdxAll`` (1x10 cell of 1x1 structs) gives
    the training ids of split k: the struct field whose name contains "train"/"trn", else its
    third field. Without it, seeded random halves are saved to ``splits_muva.json``.
    """

    name = "grid"
    folder = "grid"
    url = "http://personal.ie.cuhk.edu.hk/~ccloy/downloads_qmul_underground_reid.html"
    mat_file = "features_and_partitions.mat"
    required = ("probe", "gallery")

    def views(self, check: ImageCheck) -> list[list[Item]]:
        self.require(*self.required)
        return [folder_items(self, sub, GRID_NAME, "'PID_CAM_...jpeg' of GRID",
                             parse=lambda m: (int(m.group(1)), int(m.group(2)) - 1), check=check)
                for sub in ("probe", "gallery")]

    def collect(self, split_index: int = 0) -> Subsets:
        probe, gallery = self.read_views()
        paired = sorted(({it.pid for it in probe} & {it.pid for it in gallery}) - {0})
        if (self.root / self.mat_file).is_file():
            train_ids = set(self._mat_train_ids(self.root / self.mat_file, paired)[split_index])
            meta = {"splits_file": str(self.root / self.mat_file)}
        else:
            splits, source = self._id_splits(paired)
            train_ids, meta = set(splits[split_index]["train"]), self._meta(source)
        train = [it for it in probe + gallery if it.pid in train_ids]
        query = [it for it in probe if it.pid not in train_ids and it.pid != 0]
        gallery = [it for it in gallery if it.pid not in train_ids]
        return Subsets(train, query, gallery, meta)

    def _mat_train_ids(self, path: Path, paired: list[int]) -> list[list[int]]:
        expected = "variable 'trainIdxAll': a 1x10 cell of structs holding the training ids of each split"
        recs = records(load_mat(path, "trainIdxAll", expected), path, expected)
        if len(recs) != self.num_splits:
            raise DatasetError(f"{path}: 'trainIdxAll' has {len(recs)} entries; expected {expected}")
        out = []
        for k, rec in enumerate(recs):
            names = list(rec)
            named = [n for n in names if re.search(r"tra?i?n", n, re.IGNORECASE)]
            if len(named) == 1:
                key = named[0]
            elif len(names) >= 3:
                key = names[2]
            else:
                raise DatasetError(f"{path}: split {k} struct has fields {names}; expected {expected}")
            ids = as_ints(rec[key], path, f"trainIdxAll{{{k + 1}}}.{key}")
            unknown = sorted(set(ids) - set(paired))
            if unknown:
                raise DatasetError(f"{path}: split {k} trains on ids {unknown[:3]} that have no probe/gallery pair")
            out.append(ids)
        return out


PRID_NAME = re.compile(r"^person_(\d+)\.")


@register
class PRID(_SmallReader):
    """PRID 2011, single-shot (Hirzer et al., SCIA 2011): 200 ids seen by both cameras.

    Layout (``data/raw/prid2011/``)::

        single_shot/cam_a/person_0001.png   385 images, ids 1..385
        single_shot/cam_b/person_0001.png   749 images, ids 1..749 (ids 1..200 also in cam_a)
        multi_shot/...                      not used

    File name: ``person_XXXX.png``; cam_a is camera 0, cam_b camera 1. Only ids 1..200 are the
    same people in both cameras: cam_a's 201..385 are others, so they get pid 1000 + XXXX. Each
    of the 10 seeded splits (``splits_muva.json``) trains on 100 of the ids 1..200 (both
    cameras); query = cam_a images of the other 100, gallery = their cam_b images plus cam_b ids
    201..749 (649 images).
    """

    name = "prid"
    folder = "prid2011"
    url = "https://www.tugraz.at/institute/icg/research/team-bischof/lrs/downloads/prid11"
    #: ids 1..num_paired show the same person in cam_a and cam_b
    num_paired = 200
    #: added to cam_a ids above num_paired, which are not cam_b's people of the same number
    cam_a_offset = 1000
    required = ("single_shot/cam_a", "single_shot/cam_b")

    def views(self, check: ImageCheck) -> list[list[Item]]:
        self.require(*self.required)
        def parse_a(m: re.Match[str]) -> tuple[int, int]:
            pid = int(m.group(1))
            return (pid if pid <= self.num_paired else self.cam_a_offset + pid), 0

        expected = "'person_XXXX.png' of PRID"
        return [folder_items(self, "single_shot/cam_a", PRID_NAME, expected, parse=parse_a, check=check),
                folder_items(self, "single_shot/cam_b", PRID_NAME, expected,
                             parse=lambda m: (int(m.group(1)), 1), check=check)]

    def collect(self, split_index: int = 0) -> Subsets:
        cam_a, cam_b = self.read_views()
        paired = sorted({it.pid for it in cam_a} & {it.pid for it in cam_b if it.pid <= self.num_paired})
        splits, source = self._id_splits(paired)
        train_ids = set(splits[split_index]["train"])
        test_ids = set(splits[split_index]["test"])
        train = [it for it in cam_a + cam_b if it.pid in train_ids]
        query = [it for it in cam_a if it.pid in test_ids]
        gallery = [it for it in cam_b if it.pid not in train_ids]
        return Subsets(train, query, gallery, self._meta(source))


VIPER_NAME = re.compile(r"^(\d+)_")


@register
class VIPeR(_SmallReader):
    """VIPeR (Gray et al., PETS 2007): 632 ids, one image in each of two cameras.

    Layout (``data/raw/VIPeR/``)::

        cam_a/000_45.bmp   632 images
        cam_b/000_90.bmp   632 images

    File name: ``NNN_ANGLE.bmp``; pid = NNN + 1 (so no pid is 0), cam_a is camera 0, cam_b
    camera 1. Each of the 10 seeded splits (``splits_muva.json``) is a random half of the ids for
    training (both images); query = cam_a images of the other half, gallery = their cam_b images.
    """

    name = "viper"
    folder = "VIPeR"
    url = "https://vision.soe.ucsc.edu/node/178"
    required = ("cam_a", "cam_b")

    def views(self, check: ImageCheck) -> list[list[Item]]:
        self.require(*self.required)
        return [folder_items(self, cam, VIPER_NAME, "'NNN_ANGLE.bmp' of VIPeR",
                             parse=lambda m, c=c: (int(m.group(1)) + 1, c), check=check)
                for c, cam in enumerate(("cam_a", "cam_b"))]

    def collect(self, split_index: int = 0) -> Subsets:
        cam_a, cam_b = self.read_views()
        ids_a, ids_b = {it.pid for it in cam_a}, {it.pid for it in cam_b}
        if ids_a != ids_b:
            odd = sorted(ids_a ^ ids_b)[:3]
            raise DatasetError(f"{self.root}: cam_a and cam_b must hold the same ids; unpaired NNN: {[p - 1 for p in odd]}")
        splits, source = self._id_splits(sorted(ids_a))
        train_ids = set(splits[split_index]["train"])
        train = [it for it in cam_a + cam_b if it.pid in train_ids]
        query = [it for it in cam_a if it.pid not in train_ids]
        gallery = [it for it in cam_b if it.pid not in train_ids]
        return Subsets(train, query, gallery, self._meta(source))


ILIDS_NAME = re.compile(r"^(\d{4})(\d{3})\.")


@register
class ILIDS(_SmallReader):
    """i-LIDS (MCTS) pedestrians (Zheng et al., BMVC 2009): 476 images of 119 ids.

    Layout (``data/raw/i-LIDS_Pedestrian/``)::

        Persons/0001001.jpg   476 images, 2 or more per id

    File name: ``PPPPIII.jpg``: pid = the first 4 digits, the image index III - 1 serves as the
    camera id. Each of the 10 seeded splits (``splits_muva.json``) trains on 59 ids (all their
    images); for each of the other 60 ids one random image is the query and another the gallery.
    """

    name = "ilids"
    folder = "i-LIDS_Pedestrian"
    url = "https://www.eecs.qmul.ac.uk/~jason/data/i-LIDS_Pedestrian.tgz"
    required = ("Persons",)

    def views(self, check: ImageCheck) -> list[list[Item]]:
        self.require(*self.required)
        return [folder_items(self, "Persons", ILIDS_NAME, "'PPPPIII.jpg' of iLIDS (7 digits)",
                             parse=lambda m: (int(m.group(1)), int(m.group(2)) - 1), check=check)]

    def collect(self, split_index: int = 0) -> Subsets:
        (items,) = self.read_views()
        by_id: dict[int, list[str]] = {}
        for it in items:
            by_id.setdefault(it.pid, []).append(it.relpath)
        few = [pid for pid, rels in by_id.items() if len(rels) < 2]
        if few:
            raise DatasetError(f"{self.root / 'Persons'}: ids {few[:3]} have fewer than 2 images; iLIDS needs 2 or more")
        ids = sorted(by_id)

        def make(rng: np.random.Generator) -> list[dict]:
            out = []
            for split in half_splits(rng, ids, self.num_splits, len(ids) // 2):
                picks = [rng.choice(sorted(by_id[pid]), size=2, replace=False) for pid in split["test"]]
                out.append({"train": split["train"], "query": [str(p[0]) for p in picks],
                            "gallery": [str(p[1]) for p in picks]})
            return out

        splits, source = load_or_make_splits(self, make)
        check_split_ids(source, splits, "train", ids, len(ids) // 2)
        for key in ("query", "gallery"):
            check_split_ids(source, splits, key, {it.relpath for it in items}, len(ids) - len(ids) // 2)
        split = splits[split_index]
        train_ids = set(split["train"])
        query_rel, gallery_rel = set(split["query"]), set(split["gallery"])
        train = [it for it in items if it.pid in train_ids]
        query = [it for it in items if it.relpath in query_rel]
        gallery = [it for it in items if it.relpath in gallery_rel]
        return Subsets(train, query, gallery, self._meta(source))

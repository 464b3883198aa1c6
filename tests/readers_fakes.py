"""Tiny fake trees in every real dataset layout (a few 4x8 images each), for the reader tests."""
from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP"}


@lru_cache(maxsize=None)
def image_bytes(fmt: str, size: tuple[int, int] = (4, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 30, 200)).save(buf, fmt)
    return buf.getvalue()


def write_image(path: Path, size: tuple[int, int] = (4, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(_FORMATS[path.suffix.lower()], size))
    return path


def truncate(path: Path) -> Path:
    """Keep the first half of the file: an image cut short by a broken download."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def corrupt_pixels(path: Path) -> Path:
    """Keep the header and the last bytes (JPEG end marker, PNG IEND), drop the pixel data in between:
    the file passes the readers' quick check but does not decode."""
    data = path.read_bytes()
    start = data.find(b"\xff\xda" if data[:2] == b"\xff\xd8" else b"IDAT")  # JPEG start of scan, PNG data chunk
    path.write_bytes(data[: start + 8] + data[-16:])
    return path


def recolour(root: Path, seed: int = 0) -> Path:
    """Give every image under ``root`` its own colour (drawn from its file name and ``seed``), so that a
    mean-colour feature tells them apart."""
    import zlib

    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in _FORMATS):
        rng = np.random.default_rng([seed, zlib.crc32(path.name.encode())])
        with Image.open(path) as img:
            size = img.size
        Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 256, 3))).save(path, _FORMATS[path.suffix.lower()])
    return root


def write_tree(root: Path, files: dict[str, list[str]]) -> Path:
    """Images ``root/<folder>/<name>`` for each folder and name."""
    for folder, names in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            write_image(root / folder / name)
    return root


# Market-style datasets: (subset, pid, cam) -> name, per dataset's naming
MARKET_SPEC = {
    "train": [(2, 1), (2, 2), (7, 1), (10, 2)],
    "query": [(1, 1), (3, 2)],
    "gallery": [(0, 1), (-1, 1), (1, 2), (3, 1)],
}
MARKET_STYLE = {
    "market1501": ("", "{pid}_c{cam}s1_{i:06d}_01.jpg"),
    "dukemtmc": ("", "{pid}_c{cam}_f{i:07d}.jpg"),
    "occ_duke": ("", "{pid}_c{cam}_f{i:07d}.jpg"),
    "cuhk03np": ("detected/", "{pid}_c{cam}_{i}.png"),
    "cuhk03np-labeled": ("labeled/", "{pid}_c{cam}_{i}.png"),
}
_SUBDIR = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}


def market_style_tree(root: Path, name: str, spec: dict = MARKET_SPEC) -> Path:
    prefix, pattern = MARKET_STYLE[name]
    files = {}
    for subset, entries in spec.items():
        files[prefix + _SUBDIR[subset]] = [
            pattern.format(pid="-1" if pid == -1 else f"{pid:04d}", cam=cam, i=i) for i, (pid, cam) in enumerate(entries)
        ]
    return write_tree(root, files)


# MSMT17: (pid, cam) per subset; the list layout and the re-export hold the same images
MSMT_SPEC = {
    "train": [(0, 1), (0, 15)],
    "val": [(5, 3)],
    "query": [(0, 2), (1, 4)],
    "gallery": [(0, 7), (1, 9), (2, 11)],
}


def msmt17_list_tree(root: Path) -> Path:
    for subset, entries in MSMT_SPEC.items():
        image_dir = "train" if subset in ("train", "val") else "test"
        lines = []
        for i, (pid, cam) in enumerate(entries):
            rel = f"{pid:04d}/{pid:04d}_{i:03d}_{cam:02d}_0303morning_{i:04d}_0.jpg"
            write_image(root / image_dir / rel)
            lines.append(f"{rel} {pid}")
        (root / f"list_{subset}.txt").write_text("\n".join(lines) + "\n")
    return root


def msmt17_market_tree(root: Path) -> Path:
    files: dict[str, list[str]] = {"bounding_box_train": [], "query": [], "bounding_box_test": []}
    folder = {"train": "bounding_box_train", "val": "bounding_box_train", "query": "query",
              "gallery": "bounding_box_test"}
    for subset, entries in MSMT_SPEC.items():
        files[folder[subset]] += [f"{pid:04d}_c{cam}_{subset}{i:04d}.jpg" for i, (pid, cam) in enumerate(entries)]
    return write_tree(root, files)


# CUHK-SYSU: scenes 40x60, boxes [x, y, w, h]
SYSU_TRAIN = [("p1", [("s1.jpg", [2, 3, 10, 20]), ("s2.jpg", [0, 0, 8, 16])]),
              ("p2", [("s1.jpg", [20, 5, 10, 30])])]
SYSU_TEST = [  # (query id, query scene, query box, gallery [(scene, box or [])])
    ("p3", "s3.jpg", [1, 1, 10, 20], [("s4.jpg", [5, 5, 10, 20]), ("s2.jpg", [])]),
    ("p4", "s4.jpg", [20, 30, 12, 24], [("s3.jpg", []), ("s1.jpg", [30, 40, 20, 30])]),  # clipped to 10x20
]
SYSU_PERSON = SYSU_TRAIN + [("p3", [("s3.jpg", [1, 1, 10, 20]), ("s4.jpg", [5, 5, 10, 20])]),
                            ("p4", [("s4.jpg", [20, 30, 12, 24]), ("s1.jpg", [30, 40, 20, 30])])]


def struct_array(rows: list[dict]) -> np.ndarray:
    """A MATLAB 1xN struct array with the dicts' fields (object-valued)."""
    arr = np.zeros((1, len(rows)), dtype=[(k, "O") for k in rows[0]])
    for i, row in enumerate(rows):
        arr[0, i] = tuple(row.values())
    return arr


def _scene(name: str, box: list[int]) -> dict:
    return {"imname": name, "idlocate": np.array(box, dtype=float).reshape(1, -1), "ishard": np.array([[0]])}


def _person(idname: str, scenes: list) -> dict:
    return {"idname": idname, "nAppear": np.array([[len(scenes)]]),
            "scene": struct_array([_scene(n, b) for n, b in scenes])}


def cuhksysu_tree(root: Path) -> Path:
    for name in ("s1.jpg", "s2.jpg", "s3.jpg", "s4.jpg"):
        write_image(root / "Image" / "SSM" / name, size=(40, 60))
    tt = root / "annotation" / "test" / "train_test"
    tt.mkdir(parents=True)
    cell = np.empty((len(SYSU_TRAIN), 1), dtype=object)  # Train.mat: a cell array of 1x1 structs
    for i, (idname, scenes) in enumerate(SYSU_TRAIN):
        cell[i, 0] = struct_array([_person(idname, scenes)])
    scipy.io.savemat(tt / "Train.mat", {"Train": cell})
    rows = [{"Query": struct_array([{**_scene(qs, qb), "idname": pid}]),
             "Gallery": struct_array([_scene(s, b) for s, b in gal])} for pid, qs, qb, gal in SYSU_TEST]
    scipy.io.savemat(tt / "TestG50.mat", {"TestG50": struct_array(rows)})  # a struct array
    scipy.io.savemat(root / "annotation" / "Person.mat",
                     {"Person": struct_array([_person(i, s) for i, s in SYSU_PERSON])})
    return root


def cuhk02_tree(root: Path) -> Path:
    """P1: ids 1, 2; P2..P4: id 1; P5: ids 1, 2; one image per id and camera."""
    files = {}
    for pair, ids in (("P1", (1, 2)), ("P2", (1,)), ("P3", (1,)), ("P4", (1,)), ("P5", (1, 2))):
        for cam, index in (("cam1", 1), ("cam2", 3)):
            files[f"Dataset/{pair}/{cam}"] = [f"{pid:04d}_{index}.png" for pid in ids]
    return write_tree(root, files)


def grid_tree(root: Path) -> Path:
    """Paired ids 1..4 (probe camera 1..4, gallery camera 5..8) plus 3 gallery distractors (id 0)."""
    return write_tree(root, {
        "probe": [f"{pid:04d}_{pid}_25004_107_32_106_221.jpeg" for pid in (1, 2, 3, 4)],
        "gallery": [f"{pid:04d}_{pid + 4}_2502{pid}_116_134_128_330.jpeg" for pid in (1, 2, 3, 4)]
        + [f"0000_{c}_3000{c}_1_2_3_4.jpeg" for c in (1, 2, 3)],
    })


def grid_mat(root: Path, train_ids: list[list[int]], fields: tuple[str, ...] = ("a", "b", "trnIdx")) -> Path:
    """``trainIdxAll``: a 1xK cell of 1x1 structs whose field ``fields[-1]`` holds the training ids."""
    cell = np.empty((1, len(train_ids)), dtype=object)
    for k, ids in enumerate(train_ids):
        row = {f: np.array([[0]]) for f in fields[:-1]}
        row[fields[-1]] = np.array(ids, dtype=float).reshape(1, -1)
        cell[0, k] = struct_array([row])
    path = root / "features_and_partitions.mat"
    scipy.io.savemat(path, {"trainIdxAll": cell})
    return path


def prid_tree(root: Path) -> Path:
    """Paired ids 1..4; cam_a-only ids 201, 202; cam_b-only ids 201..203 (other people)."""
    return write_tree(root, {
        "single_shot/cam_a": [f"person_{i:04d}.png" for i in (1, 2, 3, 4, 201, 202)],
        "single_shot/cam_b": [f"person_{i:04d}.png" for i in (1, 2, 3, 4, 201, 202, 203)],
    })


def viper_tree(root: Path) -> Path:
    return write_tree(root, {"cam_a": [f"{i:03d}_45.bmp" for i in range(4)],
                             "cam_b": [f"{i:03d}_90.bmp" for i in range(4)]})


ILIDS_IMAGES = {1: 2, 2: 3, 3: 2, 4: 2, 5: 2}  # id -> number of images (11 in all)


def ilids_tree(root: Path) -> Path:
    return write_tree(root, {"Persons": [f"{pid:04d}{k:03d}.jpg" for pid, n in ILIDS_IMAGES.items()
                                         for k in range(1, n + 1)]})


def classical_roots(tmp: Path, target: str, make_target) -> dict[str, Path]:
    """Fake trees of the five sources of the classical protocol (``ma+d+c2+c3+cs->target``) and of its
    target (``make_target(folder)``), as ``build(..., roots=...)`` takes them."""
    roots = {name: market_style_tree(tmp / name, name) for name in ("market1501", "dukemtmc", "cuhk03np")}
    roots["cuhk02"] = cuhk02_tree(tmp / "cuhk02")
    roots["cuhksysu"] = cuhksysu_tree(tmp / "cuhksysu")
    roots[target] = make_target(tmp / target)
    return roots

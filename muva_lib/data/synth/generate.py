"""Writing the synthetic benchmark: split plan, parallel rendering, atomic domain folders, ground truth.

A domain is rendered into ``.<domain>.partial-<pid>/`` and moved into place in one rename, so a
domain folder is always complete. The partial folder is resumable: each image file is written
atomically (temporary name, then rename), and every 16 finished images their ``parts.jsonl``
records are appended to ``progress.jsonl`` in it (one write + fsync, :mod:`muva_lib.jsonl`). A
run killed half way leaves the folder behind; the next run with the same seed and arguments
adopts it (its writer is dead), cuts a torn last line of the log with a warning naming the file
and line, renders only the images the log lacks and ends with files byte-identical to an
uninterrupted run. A partial folder made with other arguments is deleted.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, fields, replace
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from PIL import Image

from ...jsonl import append_lines, complete_lines, cut_torn_tail
from ..errors import DatasetError
from .domains import DOMAINS, CameraScene, DomainStyle, make_cameras
from .identity import Identity, caption, sample_attributes, sample_families
from .render import PARSING_CLASSES, PART_CLASSES, render_person

__all__ = ["GENERATOR_VERSION", "SUBSETS", "SynthCfg", "SynthError", "GtRecord", "generate", "load_gt",
           "load_parsing", "plan_domain"]

#: bump whenever the same seed and arguments would draw different images
GENERATOR_VERSION = 2
SUBSETS = ("bounding_box_train", "query", "bounding_box_test")
#: finished images per progress-log append (a killed run redoes at most these)
_LOG_EVERY = 16
_PROGRESS, _PARTIAL_FINGERPRINT = "progress.jsonl", "partial.json"
_SALT_IDS, _SALT_CAMS, _SALT_PLAN, _SALT_IMAGE = 11, 22, 33, 44


class SynthError(RuntimeError):
    """The output folder holds something that does not match the request."""


@dataclass(frozen=True)
class SynthCfg:
    """Size and difficulty of each domain (the defaults give ~1,340 images per domain)."""

    ids: int = 180  # identities per domain, train + test (at most 999)
    test_fraction: float = 1 / 3  # share of the identities in the test split (whole families)
    images_per_id: int = 8  # training images per identity
    queries_per_id: int = 2  # each test identity gets 1..queries_per_id queries, all in one camera
    gallery_per_id: int = 4  # gallery images per test identity in cameras other than the query's
    same_camera_gallery: float = 0.5  # probability of one more gallery image in the query camera
    distractors: int = 20  # pid-0 gallery images per domain
    height: int = 256  # image height (pixels)
    width: int = 128  # image width (pixels)
    family_size: int = 4  # identities sharing an outfit and differing in one part (1: no families)
    occlusion: float = 1.0  # multiplies each domain's occluder probability
    jitter: float = 1.0  # multiplies each domain's scale, position and crop jitter
    degrade: float = 1.0  # multiplies each domain's noise, blur and resolution loss

    def __post_init__(self) -> None:
        n_test = self.num_test_ids
        problems = [
            (not 2 <= self.ids <= 999, f"ids={self.ids} must be in 2..999"),
            (not (1 <= n_test < self.ids), f"test_fraction={self.test_fraction} leaves no train or no test ids"),
            (min(self.images_per_id, self.queries_per_id, self.gallery_per_id, self.family_size) < 1,
             "images_per_id, queries_per_id, gallery_per_id and family_size must be >= 1"),
            (self.height < 32 or self.width < 16, f"image size {self.height}x{self.width} below 32x16"),
            (self.distractors < 0 or min(self.occlusion, self.jitter, self.degrade) < 0, "negative knob"),
        ]
        bad = [msg for cond, msg in problems if cond]
        if bad:
            raise ValueError("SynthCfg: " + "; ".join(bad))

    @property
    def num_test_ids(self) -> int:
        return max(1, round(self.ids * self.test_fraction))


@dataclass(frozen=True)
class GtRecord:
    """Ground truth of one image (one line of ``gt/parts.jsonl``); boxes in saved-image pixels."""

    relpath: str
    pid: int
    camid: int  # 0-based
    width: int
    height: int
    boxes: dict[str, tuple[float, float, float, float] | None]
    visible: dict[str, float]
    view: str
    caption: str
    attributes: dict[str, str]
    parsing: str  # relpath of the parsing PNG, relative to the domain folder


@dataclass(frozen=True)
class _Job:
    subset: str
    file: str
    pid: int
    camid: int
    key: tuple[int, ...]  # the image's RNG key
    attributes: Mapping[str, str]


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(key)))


def plan_domain(style: DomainStyle, seed: int, cfg: SynthCfg) -> tuple[dict[int, dict], list[_Job]]:
    """Identities (pid -> family info) and the image jobs of one domain, in file order.

    pids are ``1000 * style.index + 1 ...`` (train first), so domains never share a pid.
    Every query identity has gallery images in ``gallery_per_id`` cameras other than its query
    camera, and with probability ``same_camera_gallery`` one more in the query camera.
    """
    if style.cameras < 2:
        raise ValueError(f"{style.name}: needs at least 2 cameras, has {style.cameras}")
    ids_rng, plan = _rng(seed, style.index, _SALT_IDS), _rng(seed, style.index, _SALT_PLAN)
    taken: set[tuple[str, ...]] = set()
    n_test = cfg.num_test_ids
    train = sample_families(ids_rng, cfg.ids - n_test, cfg.family_size, style.priors, taken)
    test = sample_families(ids_rng, n_test, cfg.family_size, style.priors, taken,
                           first_family=train[-1].family + 1)
    people: dict[int, tuple[str, Identity]] = {}
    for i, ident in enumerate(train + test):
        people[1000 * style.index + 1 + i] = ("train" if i < len(train) else "test", ident)
    entries: list[tuple[str, int, int, Mapping[str, str]]] = []
    cams = np.arange(style.cameras)
    for pid, (split, ident) in people.items():
        if split == "train":
            chosen = plan.choice(cams, min(style.cameras, int(plan.integers(2, 5))), replace=False)
            entries += [("bounding_box_train", pid, int(chosen[i % len(chosen)]), ident.attributes)
                        for i in range(cfg.images_per_id)]
            continue
        qcam = int(plan.integers(style.cameras))
        others = cams[cams != qcam]
        gcams = plan.choice(others, cfg.gallery_per_id, replace=len(others) < cfg.gallery_per_id).tolist()
        if plan.random() < cfg.same_camera_gallery:
            gcams.append(qcam)
        entries += [("query", pid, qcam, ident.attributes)] * int(plan.integers(1, cfg.queries_per_id + 1))
        entries += [("bounding_box_test", pid, int(c), ident.attributes) for c in gcams]
    for _ in range(cfg.distractors):
        attrs = sample_attributes(plan, style.priors)
        entries.append(("bounding_box_test", 0, int(plan.integers(style.cameras)), attrs))
    jobs = [_Job(subset, f"{pid:04d}_c{cam + 1}s1_{index:06d}_00", pid=pid, camid=cam,
                 key=(seed, style.index, _SALT_IMAGE, pid, index), attributes=attrs)
            for index, (subset, pid, cam, attrs) in enumerate(entries)]
    info = {pid: {"split": split, "family": ident.family, "varying_part": ident.varying_part}
            for pid, (split, ident) in people.items()}
    return info, jobs


def _render_job(root: str, style: DomainStyle, cams: tuple[CameraScene, ...], cfg: SynthCfg, job: _Job) -> dict:
    """Render and write one image and its parsing map; return its ``parts.jsonl`` record."""
    rng = _rng(*job.key)
    out = render_person(job.attributes, style, cams[job.camid], rng, height=cfg.height, width=cfg.width,
                        occlusion=cfg.occlusion, jitter=cfg.jitter, degrade=cfg.degrade)
    relpath, parsing = f"{job.subset}/{job.file}.jpg", f"gt/parsing/{job.subset}/{job.file}.png"
    _save_atomic(out.image, Path(root, relpath), "JPEG", quality=style.jpeg_quality)
    _save_atomic(Image.fromarray(out.parsing, "L"), Path(root, parsing), "PNG", compress_level=6)
    return {
        "relpath": relpath, "pid": job.pid, "camid": job.camid, "width": cfg.width, "height": cfg.height,
        "boxes": {k: None if b is None else list(b) for k, b in out.boxes.items()},
        "visible": out.visible, "view": out.view, "caption": caption(job.attributes, out.view),
        "attributes": dict(job.attributes), "parsing": parsing,
    }


def _save_atomic(image: Image.Image, path: Path, fmt: str, **opts: Any) -> None:
    """Save under a temporary name, then rename: a killed run never leaves half an image."""
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, fmt, **opts)
    os.replace(tmp, path)


def _plain(obj: Any) -> Any:
    """JSON round trip, so that tuples and lists compare equal."""
    return json.loads(json.dumps(obj))


def _fingerprint(seed: int, cfg: SynthCfg, style: DomainStyle) -> dict:
    return _plain({"version": GENERATOR_VERSION, "seed": seed, "arguments": asdict(cfg), "style": asdict(style)})


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_meta(folder: Path) -> dict | None:
    return _read_json(folder / "meta.json")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(out: Path, name: str, fingerprint: dict | None = None) -> Path | None:
    """Deal with the temporary folders of killed runs (their writer process is gone): return the first
    one made with ``fingerprint`` (to resume), remove the others."""
    keep = None
    for tmp in sorted(out.glob(f".{name}.partial-*")):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            if keep is None and fingerprint is not None and _read_json(tmp / _PARTIAL_FINGERPRINT) == fingerprint:
                keep = tmp
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    return keep


def _open_partial(out: Path, style: DomainStyle, fingerprint: dict) -> tuple[Path, dict[str, dict]]:
    """This run's partial folder and the records already in its progress log: a killed run's folder
    with the same fingerprint is adopted (renamed to this pid), else a fresh one is made."""
    tmp = out / f".{style.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    stale = _clean_stale(out, style.name, fingerprint)
    if stale is None:
        for sub in SUBSETS:
            (tmp / sub).mkdir(parents=True)
            (tmp / "gt" / "parsing" / sub).mkdir(parents=True)
        (tmp / _PARTIAL_FINGERPRINT).write_text(json.dumps(fingerprint))
        return tmp, {}
    stale.rename(tmp)
    for half in tmp.rglob("*.tmp"):  # an image being written when the run was killed
        half.unlink()
    log = tmp / _PROGRESS
    cut_torn_tail(log)  # warns with the file and line; that image is rendered again
    done: dict[str, dict] = {}
    for n, line in complete_lines(log):
        try:
            rec = json.loads(line)
            done[rec["relpath"]] = rec
        except (ValueError, KeyError, TypeError) as exc:
            raise SynthError(f"{log}:{n}: not a progress record ({exc}); delete {tmp} to render "
                             f"{style.name} from the start") from None
    return tmp, done


def _check_existing(out: Path, seed: int, cfg: SynthCfg, names: Sequence[str], overwrite: bool) -> list[str]:
    """Requested domains already complete with the same arguments; raise if ``out`` would mix runs.

    A requested domain made with other arguments (or without ``meta.json``) is a clash unless
    ``overwrite``; any other domain folder in ``out`` must share version, seed and arguments
    (with ``overwrite`` a mismatch there only warns: it is left as it is).
    """
    done, clashes = [], []
    for name, style in DOMAINS.items():
        folder = out / name
        if not folder.exists():
            continue
        meta = _read_meta(folder) or {}
        want = _fingerprint(seed, cfg, style)
        if all(meta.get(k) == v for k, v in want.items()):
            done += [name] if name in names else []
        elif name in names or any(meta.get(k) != want[k] for k in ("version", "seed", "arguments")):
            clashes.append((name, f"{folder} ({'no readable meta.json' if not meta else 'made with other arguments'})"))
    if overwrite:
        others = [why for name, why in clashes if name not in names]
        if others:
            warnings.warn(f"{out}: leaving {', '.join(others)} as it is; the folder now mixes runs", stacklevel=3)
    elif clashes:
        raise SynthError(
            f"{out} already holds {', '.join(why for _, why in clashes)}; refusing to mix benchmarks. "
            "Pick another --out, or pass --overwrite to regenerate the requested domains.")
    return done


def _write_domain(out: Path, style: DomainStyle, seed: int, cfg: SynthCfg, pool: Any, bar: Any) -> dict:
    """Render one domain into a temporary folder, then move it into place in one rename."""
    info, jobs = plan_domain(style, seed, cfg)
    cams = make_cameras(style, _rng(seed, style.index, _SALT_CAMS))
    tmp, done = _open_partial(out, style, _fingerprint(seed, cfg, style))
    bar.update(len(done))
    work = partial(_render_job, str(tmp), style, cams, cfg)
    todo = [j for j in jobs if f"{j.subset}/{j.file}.jpg" not in done]
    records, pending = list(done.values()), []
    for rec in (pool.imap(work, todo, chunksize=16) if pool is not None else map(work, todo)):
        pending.append(rec)
        if len(pending) >= _LOG_EVERY:
            append_lines(tmp / _PROGRESS, pending, sort_keys=False)
            records.extend(pending)
            pending = []
        bar.update(1)
    records += pending
    (tmp / _PROGRESS).unlink(missing_ok=True)
    (tmp / _PARTIAL_FINGERPRINT).unlink()
    records.sort(key=lambda r: r["relpath"])
    (tmp / "gt" / "parts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    counts = {sub: {"images": sum(j.subset == sub for j in jobs), "ids": len({j.pid for j in jobs if j.subset == sub})}
              for sub in SUBSETS}
    meta = {**_fingerprint(seed, cfg, style), "generator": "muva_lib.data.synthetic", "domain": style.name,
            "cameras": [asdict(c) for c in cams], "counts": counts, "parsing_classes": list(PARSING_CLASSES),
            "part_classes": {k: list(v) for k, v in PART_CLASSES.items()},
            "identities": {str(pid): v for pid, v in info.items()}}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    final = out / style.name
    if final.exists():  # --overwrite: swap, then delete the old folder
        old = out / f".{style.name}.old-{os.getpid()}"
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old)
    else:
        tmp.rename(final)
    return counts


def generate(out: str | Path, seed: int = 0, domains: Iterable[str] = tuple(DOMAINS), cfg: SynthCfg | None = None,
             *, workers: int = 1, overwrite: bool = False, progress: bool = False, **overrides: Any) -> dict:
    """Generate the benchmark under ``out/<domain>/`` (Market-1501 layout plus ``gt/`` and ``meta.json``).

    ``overrides`` are :class:`SynthCfg` fields (``ids=30, height=128``). Same seed and arguments
    give byte-identical files, whatever ``workers``. A domain already complete with the same
    arguments is skipped; one made with other arguments raises :class:`SynthError` unless
    ``overwrite``. Returns ``{"out", "seed", "domains": {name: {"status", "counts", "seconds"}},
    "images", "seconds"}`` (``images`` counts the images written by this call).
    """
    names = list(dict.fromkeys(domains))
    unknown = [n for n in names if n not in DOMAINS]
    if unknown:
        raise KeyError(f"unknown synthetic domain(s) {unknown}; known: {', '.join(DOMAINS)}")
    known = {f.name for f in fields(SynthCfg)}
    if set(overrides) - known:
        raise TypeError(f"unknown SynthCfg field(s) {sorted(set(overrides) - known)}; known: {sorted(known)}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    cfg = replace(cfg or SynthCfg(), **overrides)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = _check_existing(out, seed, cfg, names, overwrite)
    todo = [n for n in names if n not in done]
    summary: dict[str, Any] = {"out": str(out), "seed": seed, "domains": {}, "images": 0}
    for name in done:
        meta = _read_meta(out / name) or {}
        summary["domains"][name] = {"status": "skipped", "counts": meta.get("counts"), "seconds": 0.0}
    start = time.perf_counter()
    from tqdm.auto import tqdm

    total = sum(len(plan_domain(DOMAINS[n], seed, cfg)[1]) for n in todo)
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    pool = ctx.Pool(workers) if workers > 1 and todo else None
    try:
        with tqdm(total=total, disable=not progress, unit="img", desc="synth") as bar:
            for name in todo:
                t0 = time.perf_counter()
                counts = _write_domain(out, DOMAINS[name], seed, cfg, pool, bar)
                summary["domains"][name] = {"status": "generated", "counts": counts,
                                            "seconds": round(time.perf_counter() - t0, 2)}
                summary["images"] += sum(c["images"] for c in counts.values())
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    summary["seconds"] = round(time.perf_counter() - start, 2)
    return summary


def load_gt(domain_root: str | Path) -> dict[str, GtRecord]:
    """``gt/parts.jsonl`` of one generated domain as ``{relpath: GtRecord}``."""
    path = Path(domain_root) / "gt" / "parts.jsonl"
    if not path.is_file():
        raise DatasetError(f"{path} is missing: generate the domain with `python -m muva_lib synth`")
    out: dict[str, GtRecord] = {}
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        try:
            obj = json.loads(line)
            obj["boxes"] = {k: None if b is None else tuple(b) for k, b in obj["boxes"].items()}
            out[obj["relpath"]] = GtRecord(**obj)
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path}:{line_no}: not a ground-truth record ({exc})") from None
    return out


def load_parsing(domain_root: str | Path, relpath: str) -> np.ndarray:
    """The parsing map ``[H, W]`` uint8 (indices into PARSING_CLASSES) of an image relpath."""
    rel = Path(relpath)
    png = rel if rel.parts[:2] == ("gt", "parsing") else Path("gt", "parsing", *rel.parts[:-1], rel.stem + ".png")
    path = Path(domain_root) / png
    if not path.is_file():
        raise DatasetError(f"{path}: no parsing map for {relpath}")
    with Image.open(path) as im:
        if im.mode != "L":
            raise DatasetError(f"{path}: parsing map has mode {im.mode}, expected single-channel L")
        return np.asarray(im, dtype=np.uint8).copy()

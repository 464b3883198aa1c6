"""The pretraining corpus: many identities from the benchmark's generator under randomised domains, in shards.

Layout (``python -m muva_lib synth-pretrain --out data/synth-pretrain``)::

    <out>/corpus.json                       version, seed, arguments; when complete also counts, parsing and
                                            part classes, caption shares and leakage
    <out>/shard-0000/images/<pid>_<k>.jpg   image k of identity pid (pids from 100001: never a benchmark pid)
    <out>/shard-0000/parsing/<pid>_<k>.png  uint8 class map, indices into PARSING_CLASSES
    <out>/shard-0000/records.jsonl          one record per image: the benchmark's GtRecord fields (relpath
                                            and parsing relative to <out>, camid = k) plus ``captions``
                                            ([{text, part}], :mod:`.captions`), ``family`` and ``nuisance``

A shard (``shard_size`` identities) is rendered into ``.shard-NNNN.partial-<pid>/`` and renamed into place
when its records are written, so a shard folder is always complete. A killed run leaves at most one
partial folder per shard; the next run with the same arguments removes it (its writer is dead), keeps
every finished shard untouched and renders the rest, ending byte-identical to an uninterrupted run.

Randomness: every draw has its own stream keyed ``(seed, 100, salt, ...)`` with salts 55 (identities),
66 (nuisances), 77 (rendering), 88 (captions). Benchmark keys are ``(seed, domain, salt, ...)`` with salts
11, 22, 33, 44, so the third word differs and no corpus stream equals a benchmark stream, whatever the
two seeds (seeds are single 32-bit words, so the positions cannot shift). Identities are drawn with
each identity's own clothing priors (short sleeves 0.1-0.9, shorts 0-0.35, skirt 0-0.25, hat 0-0.5, bag
0.1-0.6, covering the three domains' "seasons") and never wear the outfit of any benchmark identity
(train, test or distractor, all domains, benchmark seed ``benchmark_seed`` with the benchmark's default
arguments): :mod:`.twins` counts what is left. Nuisances: :mod:`.nuisance`.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from ...utils import atomic_write_json, atomic_write_text
from ..errors import DatasetError
from .captions import Caption, image_captions
from .domains import DOMAINS
from .generate import GENERATOR_VERSION, GtRecord, SynthError, _pid_alive, _rng, _save_atomic
from .identity import Identity, Priors, caption, sample_families
from .nuisance import as_scene, check_exclusion, draw_nuisance
from .render import PARSING_CLASSES, PART_CLASSES, render_person
from .twins import attribute_key, benchmark_identities, count_twins

__all__ = ["CORPUS_VERSION", "PID_BASE", "CORPUS_SALTS", "CorpusCfg", "CorpusRecord", "plan_identities",
           "corpus_key", "generate_corpus", "load_corpus", "corpus_captions", "leakage", "caption_shares"]

#: bump whenever the same seed and arguments would draw a different corpus
CORPUS_VERSION = 1
PID_BASE = 100_000
_CORPUS_INDEX = 100
_SALT_IDS, _SALT_NUISANCE, _SALT_IMAGE, _SALT_CAPTIONS = CORPUS_SALTS = (55, 66, 77, 88)
_MANIFEST, _RECORDS = "corpus.json", "records.jsonl"


@dataclass(frozen=True)
class CorpusCfg:
    """Size and make-up of the corpus (defaults: 3,000 identities x 8 = 24,000 images at 128x64)."""

    ids: int = 3000  # identities
    images_per_id: int = 8  # images per identity, each in its own random scene (camid = image index)
    height: int = 128  # image height (pixels)
    width: int = 64  # image width (pixels)
    shard_size: int = 250  # identities per shard (the unit a killed run redoes)
    family_size: int = 1  # identities sharing an outfit and differing in one part (1: independent)
    part_share: float = 0.5  # share of images that get part captions
    exclude_style: tuple[str, ...] = ()  # benchmark domains whose nuisance settings are never drawn
    benchmark_seed: int = 0  # the benchmark whose identities are kept out and counted as twins

    def __post_init__(self) -> None:
        object.__setattr__(self, "exclude_style", tuple(self.exclude_style))
        unknown = [n for n in self.exclude_style if n not in DOMAINS]
        problems = [
            (self.ids < 1 or self.images_per_id < 1 or self.shard_size < 1 or self.family_size < 1,
             "ids, images_per_id, shard_size and family_size must be >= 1"),
            (self.height < 32 or self.width < 16, f"image size {self.height}x{self.width} below 32x16"),
            (not 0.0 <= self.part_share <= 1.0, f"part_share={self.part_share} must be in 0..1"),
            (bool(unknown), f"unknown exclude_style {unknown}; known: {', '.join(DOMAINS)}"),
            (not 0 <= self.benchmark_seed < 2 ** 32, "benchmark_seed must be in 0..2**32-1"),
        ]
        bad = [msg for cond, msg in problems if cond]
        if bad:
            raise ValueError("CorpusCfg: " + "; ".join(bad))
        check_exclusion([DOMAINS[n] for n in self.exclude_style])

    @property
    def num_shards(self) -> int:
        return -(-self.ids // self.shard_size)


@dataclass(frozen=True)
class CorpusRecord(GtRecord):
    """One corpus image: the benchmark's ground truth plus its varied captions, family and nuisances."""

    captions: tuple[Caption, ...]
    family: int
    nuisance: dict[str, Any]


def corpus_key(seed: int, salt: int, *rest: int) -> tuple[int, ...]:
    """The key of one corpus random stream (see the module docstring)."""
    return (seed, _CORPUS_INDEX, salt, *rest)


def _draw_priors(rng: np.random.Generator) -> Priors:
    u = rng.uniform(0, 1, 5)
    return Priors(short_sleeves=round(0.1 + 0.8 * u[0], 4), shorts=round(0.35 * u[1], 4),
                  skirt=round(0.25 * u[2], 4), hat=round(0.5 * u[3], 4), bag=round(0.1 + 0.5 * u[4], 4))


def _benchmark_keys(cfg: CorpusCfg) -> set[tuple[str, ...]]:
    groups = benchmark_identities(cfg.benchmark_seed)
    return {attribute_key(a) for domain in groups.values() for people in domain.values() for a in people}


def plan_identities(seed: int, cfg: CorpusCfg) -> list[tuple[int, Identity]]:
    """``[(pid, Identity)]`` of the corpus, pids ``PID_BASE + 1 ...``; no outfit repeats or is a benchmark's."""
    rng = _rng(*corpus_key(seed, _SALT_IDS))
    taken = _benchmark_keys(cfg)
    people: list[Identity] = []
    while len(people) < cfg.ids:
        size = min(cfg.family_size, cfg.ids - len(people))
        family = people[-1].family + 1 if people else 0
        people += sample_families(rng, size, cfg.family_size, _draw_priors(rng), taken, first_family=family)
    return [(PID_BASE + 1 + i, ident) for i, ident in enumerate(people)]


def _render_image(root: str, shard: str, seed: int, cfg: CorpusCfg, job: tuple[int, int, Identity]) -> dict:
    """Render and write one image and its parsing map into the partial folder ``root``; return its record."""
    pid, k, ident = job
    nuisance = draw_nuisance(_rng(*corpus_key(seed, _SALT_NUISANCE, pid, k)), [DOMAINS[n] for n in cfg.exclude_style])
    style, cam = as_scene(nuisance)
    out = render_person(ident.attributes, style, cam, _rng(*corpus_key(seed, _SALT_IMAGE, pid, k)),
                        height=cfg.height, width=cfg.width)
    stem = f"{pid}_{k:02d}"
    _save_atomic(out.image, Path(root, "images", f"{stem}.jpg"), "JPEG", quality=nuisance.jpeg_quality)
    _save_atomic(Image.fromarray(out.parsing, "L"), Path(root, "parsing", f"{stem}.png"), "PNG", compress_level=6)
    texts = image_captions(ident.attributes, out.view, out.visible, _rng(*corpus_key(seed, _SALT_CAPTIONS, pid, k)),
                           part_share=cfg.part_share)
    return {
        "relpath": f"{shard}/images/{stem}.jpg", "pid": pid, "camid": k, "width": cfg.width, "height": cfg.height,
        "boxes": {p: None if b is None else list(b) for p, b in out.boxes.items()}, "visible": out.visible,
        "view": out.view, "caption": caption(ident.attributes, out.view), "attributes": dict(ident.attributes),
        "parsing": f"{shard}/parsing/{stem}.png", "captions": [{"text": c.text, "part": c.part} for c in texts],
        "family": ident.family, "nuisance": nuisance.as_dict(),
    }


def _fingerprint(seed: int, cfg: CorpusCfg) -> dict:
    return json.loads(json.dumps({"version": CORPUS_VERSION, "generator_version": GENERATOR_VERSION,
                                  "seed": seed, "arguments": asdict(cfg)}))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _shard_done(folder: Path, n_images: int) -> bool:
    """A shard folder holds ``n_images`` complete records (folders appear only by rename, so this is a check)."""
    try:
        lines = (folder / _RECORDS).read_bytes().split(b"\n")
    except OSError:
        return False
    return len(lines) == n_images + 1 and lines[-1] == b""


def _clear_partials(out: Path) -> None:
    """Remove the partial shard folders of killed runs; refuse when a live process is writing one."""
    for tmp in sorted(out.glob(".shard-*.partial-*")):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _pid_alive(int(pid)):
            raise SynthError(f"{tmp}: process {pid} is writing this corpus; wait for it or stop it")
        shutil.rmtree(tmp, ignore_errors=True)


def _write_shard(out: Path, index: int, people: Sequence[tuple[int, Identity]], seed: int, cfg: CorpusCfg,
                 pool: Any, bar: Any) -> None:
    """Render one shard into a partial folder, write its records, then rename it into place."""
    name = f"shard-{index:04d}"
    tmp = out / f".{name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    (tmp / "parsing").mkdir()
    jobs = [(pid, k, ident) for pid, ident in people for k in range(cfg.images_per_id)]
    work = partial(_render_image, str(tmp), name, seed, cfg)
    records = []
    for rec in (pool.imap(work, jobs, chunksize=8) if pool is not None else map(work, jobs)):
        records.append(rec)
        bar.update(1)
    atomic_write_text(tmp / _RECORDS, "".join(json.dumps(r) + "\n" for r in records))
    final = out / name
    if final.exists():  # incomplete (checked by the caller): replaced
        shutil.rmtree(final)
    tmp.rename(final)


def generate_corpus(out: str | Path, seed: int = 0, cfg: CorpusCfg | None = None, *, workers: int = 1,
                    progress: bool = False) -> dict:
    """Write (or finish) the corpus under ``out``; same seed and arguments give byte-identical files.

    A finished shard is never touched; a missing or incomplete one is rendered again. ``out`` made with
    other arguments raises :class:`SynthError`. Returns ``{"out", "seed", "shards", "rendered_shards",
    "images", "rendered_images", "seconds", "leakage", "captions"}`` (``leakage``: :func:`leakage`,
    ``captions``: :func:`caption_shares`).
    """
    cfg = cfg or CorpusCfg()
    if not 0 <= seed < 2 ** 32:
        raise ValueError(f"seed must be in 0..2**32-1, got {seed}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    want = _fingerprint(seed, cfg)
    manifest = out / _MANIFEST
    have = _read_json(manifest) if manifest.exists() else want
    if have is None or {k: have.get(k) for k in want} != want:
        raise SynthError(f"{manifest}: {'unreadable' if have is None else 'made with other arguments'}; pick "
                         "another --out or delete the folder (refusing to mix corpora)")
    if not manifest.exists():
        if any(out.iterdir()):
            raise SynthError(f"{out} is not empty and holds no {_MANIFEST}: pick another --out for the corpus")
        atomic_write_json(manifest, want)
    _clear_partials(out)
    people = plan_identities(seed, cfg)
    shards = [people[i:i + cfg.shard_size] for i in range(0, len(people), cfg.shard_size)]
    todo = [i for i, chunk in enumerate(shards)
            if not _shard_done(out / f"shard-{i:04d}", len(chunk) * cfg.images_per_id)]
    for i in todo:
        if (out / f"shard-{i:04d}").exists():
            warnings.warn(f"{out / f'shard-{i:04d}'}: incomplete shard, rendered again", stacklevel=2)
    from tqdm.auto import tqdm

    start = time.perf_counter()
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    pool = ctx.Pool(workers) if workers > 1 and todo else None
    try:
        with tqdm(total=sum(len(shards[i]) for i in todo) * cfg.images_per_id, disable=not progress,
                  unit="img", desc="synth-pretrain") as bar:
            for i in todo:
                _write_shard(out, i, shards[i], seed, cfg, pool, bar)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    seconds = time.perf_counter() - start
    records = load_corpus(out, check_complete=False)
    complete = {**want, "complete": True, "shards": len(shards), "images": len(records),
                "parsing_classes": list(PARSING_CLASSES),
                "part_classes": {k: list(v) for k, v in PART_CLASSES.items()},
                "leakage": leakage([dict(ident.attributes) for _, ident in people], cfg),
                "captions": caption_shares(records)}
    if _read_json(manifest) != complete:
        atomic_write_json(manifest, complete)
    return {"out": str(out), "seed": seed, "shards": len(shards), "rendered_shards": len(todo),
            "images": len(records), "rendered_images": sum(len(shards[i]) for i in todo) * cfg.images_per_id,
            "seconds": round(seconds, 2), "leakage": complete["leakage"], "captions": complete["captions"]}


def leakage(corpus_attributes: Sequence[dict[str, str]], cfg: CorpusCfg) -> dict[str, dict[str, int]]:
    """Per benchmark domain: its test identities, how many have an exact attribute twin in the corpus and how
    many a near twin (one attribute differs). ``corpus_attributes``: one attribute dict per corpus identity."""
    out = {}
    for name, groups in benchmark_identities(cfg.benchmark_seed).items():
        test = groups["test"]
        out[name] = {"test_ids": len(test), "twins": count_twins(test, corpus_attributes),
                     "near_twins": count_twins(test, corpus_attributes, max_diff=1)}
    return out


def caption_shares(records: Sequence["CorpusRecord"]) -> dict[str, float]:
    """Share of images with part captions, share of caption-image pairs that are part captions, pairs per image."""
    pairs = sum(len(r.captions) for r in records)
    part_pairs = sum(c.part != "full" for r in records for c in r.captions)
    with_parts = sum(any(c.part != "full" for c in r.captions) for r in records)
    n = max(1, len(records))
    return {"images_with_parts": round(with_parts / n, 4), "part_pairs": round(part_pairs / max(1, pairs), 4),
            "pairs_per_image": round(pairs / n, 4)}


def load_corpus(root: str | Path, *, check_complete: bool = True) -> list[CorpusRecord]:
    """Every image record of a corpus, shard by shard in file order. ``check_complete``: the manifest must say
    the corpus is complete (a run that was killed has not written that yet)."""
    root = Path(root)
    meta = _read_json(root / _MANIFEST)
    if meta is None:
        raise DatasetError(f"{root / _MANIFEST} is missing or unreadable: write the corpus with "
                           "`python -m muva_lib synth-pretrain`")
    if check_complete and not meta.get("complete"):
        raise DatasetError(f"{root / _MANIFEST}: the corpus is incomplete; run `python -m muva_lib synth-pretrain` "
                           "with the same arguments to finish it")
    out: list[CorpusRecord] = []
    for path in sorted(root.glob(f"shard-*/{_RECORDS}")):
        for line_no, line in enumerate(path.read_text().splitlines(), 1):
            try:
                obj = json.loads(line)
                obj["boxes"] = {k: None if b is None else tuple(b) for k, b in obj["boxes"].items()}
                obj["captions"] = tuple(Caption(**c) for c in obj["captions"])
                out.append(CorpusRecord(**obj))
            except (ValueError, KeyError, TypeError) as exc:
                raise DatasetError(f"{path}:{line_no}: not a corpus record ({exc})") from None
    return out


def corpus_captions(root: str | Path) -> dict[str, list[Caption]]:
    """Per image relpath, its captions and which part each describes (``full``, ``head``, ``upper``, ``legs``)."""
    return {r.relpath: list(r.captions) for r in load_corpus(root)}


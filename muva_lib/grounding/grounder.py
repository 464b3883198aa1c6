"""Grounding runs: ask a backend for part boxes of items and keep its answers in the store (resumable).

:mod:`muva_lib.grounding.part_masks` turns the stored answers into calibrated boxes and patch masks.
"""
from __future__ import annotations

import os
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from PIL import Image

from ..data.types import Item
from .answers import validate_box
from .backends import Answer, Backend, failed_answers
from .box_store import GroundingStore

__all__ = ["GroundReport", "ground_items", "group_by_dataset"]


@dataclass
class GroundReport:
    """What a grounding run did: images grounded now / found done, and answer counts over the store."""

    dataset: str
    tag: str
    grounded: int = 0
    skipped: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # part -> status -> images
    dropped: int = 0  # stored boxes that were not finite, dropped when read (their parts fall back)

    def fallback_share(self) -> dict[str, float]:
        """Per part, the share of images with no usable box (``fallback`` or ``failed``): their box
        comes from the prior band."""
        return {p: (per.get("fallback", 0) + per.get("failed", 0)) / max(1, sum(per.values()))
                for p, per in self.counts.items()}

    def fallback_warning(self, max_share: float) -> str | None:
        """A loud message when some part falls back to the prior for more than ``max_share`` of the
        images (a wrong ``vge.answer_format``, a backend that fails on every image), else None."""
        high = {p: v for p, v in self.fallback_share().items() if v > max_share}
        if not high:
            return None
        n = max((sum(per.values()) for per in self.counts.values()), default=0)
        return (f"grounding {self.dataset} [{self.tag}]: " + ", ".join(f"{p} {v:.0%}" for p, v in high.items())
                + f" of {n} images have no usable box and fall back to the prior (more than "
                f"vge.max_fallback_share={max_share:g}); their masks are the fixed prior bands. Check the "
                f"backend, vge.answer_format and the store's reasons (python -m muva_lib calibrate "
                f"--dataset {self.dataset} ...)")

    def totals(self) -> dict[str, int]:
        out = {"ok": 0, "fallback": 0, "failed": 0}
        for per in self.counts.values():
            for s, n in per.items():
                out[s] = out.get(s, 0) + n
        return out

    def summary(self) -> str:
        """One line per part: parsed / fell back / failed."""
        lines = [f"{self.dataset} [{self.tag}]: {self.grounded} grounded now, {self.skipped} already in the store"]
        for p, per in self.counts.items():
            lines.append(f"  {p:<6} parsed {per.get('ok', 0):>6}  fell back {per.get('fallback', 0):>6}  "
                         f"failed {per.get('failed', 0):>6}")
        if self.dropped:
            lines.append(f"  {self.dropped} stored box(es) were not finite and were dropped (those parts fall back)")
        return "\n".join(lines)


def group_by_dataset(items: Sequence[Item]) -> dict[str, list[Item]]:
    """Items by ``item.dataset``, each list sorted by relpath (deterministic order)."""
    out: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        out[it.dataset].append(it)
    return {d: sorted(v, key=lambda it: it.relpath) for d, v in sorted(out.items())}


def _batches(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), max(1, size)):
        yield seq[i:i + max(1, size)]


def _checked(answer: Any, size: tuple[int, int]) -> Answer:
    """One part's answer as the store takes it: a missing answer is a fallback, an ``ok`` box is
    validated against the image again (whatever backend made it)."""
    if not isinstance(answer, Answer):
        return Answer("", None, "fallback", "backend gave no answer for this part")
    if answer.status != "ok":
        return answer
    box, why = validate_box(answer.box, size)
    if box is None:
        return Answer(answer.raw, None, "fallback", why)
    reason = answer.reason
    if why and why not in reason:
        reason = f"{reason}; {why}" if reason else why
    return Answer(answer.raw, box, "ok", reason)


def _complete(answers: Any, parts: Sequence[str], size: tuple[int, int]) -> dict[str, Answer]:
    """A backend's answer for one image, with every part present and checked."""
    if not isinstance(answers, Mapping):
        return failed_answers(f"backend returned {type(answers).__name__}, not a dict of answers", parts)
    return {p: _checked(answers.get(p), size) for p in parts}


def _ground_batch(backend: Backend, images: list[Image.Image], items: list[Item]) -> list[dict[str, Answer]]:
    """One backend call; on an exception, image by image so that one bad image fails alone."""
    try:
        res = backend.ground(images, items)
        if len(res) != len(items):
            raise RuntimeError(f"backend returned {len(res)} answers for {len(items)} images")
        return [_complete(r, backend.parts, im.size) for r, im in zip(res, images)]
    except Exception:
        if len(items) == 1:
            raise
    out = []
    for im, it in zip(images, items):
        try:
            out.append(_ground_batch(backend, [im], [it])[0])
        except Exception as exc:  # noqa: BLE001 - recorded as a failure, the run goes on
            out.append(failed_answers(exc, backend.parts))
    return out


def _file_bytes(item: Item) -> int | None:
    try:
        return os.path.getsize(item.path)
    except OSError:
        return None


def _record(item: Item, size: tuple[int, int] | None, answers: Mapping[str, Answer]) -> dict[str, Any]:
    """A store line; ``bytes`` (the file's size) tells later runs whether the record is of this very file."""
    return {"key": item.key, "size": None if size is None else list(size), "bytes": _file_bytes(item),
            "parts": {p: a.to_dict() for p, a in answers.items()}}


def _stale(item: Item, record: Mapping[str, Any]) -> bool:
    """A record of another file under the same ``dataset/relpath``: the dataset was regenerated (another
    seed or size), or another dataset of that name was grounded into the store. Its byte size differs.
    Records written before ``bytes`` existed cannot tell, and count as current."""
    stored = record.get("bytes")
    return stored is not None and stored != _file_bytes(item)


def _count(records: Mapping[str, Mapping[str, Any]], parts: Sequence[str]) -> dict[str, dict[str, int]]:
    counts = {p: {"ok": 0, "fallback": 0, "failed": 0} for p in parts}
    for rec in records.values():
        for p in parts:
            st = rec["parts"].get(p, {}).get("status", "failed")
            counts[p][st] = counts[p].get(st, 0) + 1
    return counts


def ground_items(items: Sequence[Item], backend: Backend, root: str | Path | None = None,
                 progress: bool = True, retry_failed: bool = False, limit: int | None = None,
                 batch_size: int | None = None) -> list[GroundReport]:
    """Ground every item not yet in its dataset's store; one :class:`GroundReport` per dataset.

    Resumable: keys already in the store are skipped (``retry_failed`` re-grounds images whose
    backend call raised); each batch is appended with flush + fsync, so an interrupted run loses
    at most the batch in flight. Answers never raise: unreadable images and backend exceptions
    become ``failed`` answers with the error as reason. ``limit`` caps the images grounded now
    per dataset. A complete store is only read (no write access needed); with work to do the
    store's lock is taken, so two runs on one store never ground the same image twice.
    """
    backend.check(items)  # a backend that cannot serve a dataset at all is refused, not stored as failures
    reports = []
    for dataset, its in group_by_dataset(items).items():
        store = GroundingStore(dataset, backend.tag, root)
        report = GroundReport(dataset, backend.tag)
        done = store.read()
        todo = _todo(its, done, retry_failed)
        stale = sum(1 for it in todo if it.key in done and _stale(it, done[it.key]))
        if stale:
            warnings.warn(f"{store.path}: {stale} record(s) were made for other files under the same names (the "
                          "dataset was regenerated, or another dataset of that name was grounded here): grounded "
                          "again", stacklevel=2)
        if todo:  # a complete store is only read: nothing is opened for writing
            with store.lock():
                store.repair()
                todo = _todo(its, store.read(), retry_failed)  # a concurrent run may have done some
                report.grounded = _ground_todo(store, backend, todo[:limit] if limit is not None else todo,
                                               batch_size, progress)
        report.skipped = len(its) - len(todo)
        asked = {it.key for it in its}
        report.counts = _count({k: v for k, v in store.read().items() if k in asked}, backend.parts)
        report.dropped = len(store.dropped)
        reports.append(report)
    return reports


def _todo(its: Sequence[Item], done: Mapping[str, Mapping[str, Any]], retry_failed: bool) -> list[Item]:
    """Items to ground: not in the store, stored for another file (:func:`_stale`), or failed (``retry_failed``)."""
    return [it for it in its if it.key not in done or _stale(it, done[it.key])
            or (retry_failed and any(a.get("status") == "failed" for a in done[it.key]["parts"].values()))]


def _ground_todo(store: GroundingStore, backend: Backend, todo: Sequence[Item], batch_size: int | None,
                 progress: bool) -> int:
    """Ground ``todo`` batch by batch, appending each batch to the store; return the images grounded."""
    from tqdm import tqdm

    if not todo:
        return 0
    store.write_meta(backend.describe())
    done = 0
    with tqdm(total=len(todo), desc=f"ground {store.dataset} [{backend.tag}]", unit="img",
              disable=not progress) as bar:
        for batch in _batches(todo, batch_size or backend.batch_size):
            opened: list[tuple[Item, Image.Image]] = []
            records: dict[str, dict[str, Any]] = {}
            for it in batch:
                try:
                    opened.append((it, Image.open(it.path)))
                except Exception as exc:  # noqa: BLE001
                    records[it.key] = _record(it, None, failed_answers(f"cannot open image: {exc}", backend.parts))
            try:
                if opened:
                    answers = _ground_batch(backend, [im for _, im in opened], [it for it, _ in opened])
                    for (it, im), ans in zip(opened, answers):
                        records[it.key] = _record(it, im.size, ans)
            finally:
                for _, im in opened:
                    im.close()
            store.append([records[it.key] for it in batch])
            done += len(batch)
            bar.update(len(batch))
    return done

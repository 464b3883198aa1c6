"""Named train/test protocols (supervised, single- and multi-source DG, classical, synthetic) and their data.

A protocol name reads ``sources->target`` with ``+`` between sources and short dataset names
(``ma`` Market-1501, ``d`` DukeMTMC-reID, ``ms`` MSMT17, ``c3`` CUHK03-NP, ``occ-d``
Occluded-Duke, ``c2`` CUHK02, ``cs`` CUHK-SYSU, ``prid``, ``grid``, ``viper``, ``ilids``,
``synth-a``/``synth-b``/``synth-c``); a bare name (``ma``) is the supervised in-domain protocol.
The named table (:data:`PROTOCOLS`) holds every protocol the papers report; any other
well-formed name is built on the fly.

Multi-source training merges the sources with pid, camera and domain offsets; keys stay
``dataset/relpath`` and are therefore unique across sources.
"""
from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

from .readers import DatasetError, get_reader, read_all, read_dataset
from .readers.reader import ImageCheck, decode_problem, relabel
from .types import Item, Split

__all__ = [
    "ALIASES", "ALL_SPLITS", "Protocol", "ProtocolData", "SourceInfo", "PROTOCOLS", "get_protocol", "list_protocols",
    "build", "merge_sources", "split_indices", "undecodable", "protocol_datasets", "dataset_readiness", "readiness_lines",
    "protocol_table", "synthetic_protocols",
]

#: ``split_index`` (``data.split_index``) meaning every seeded split of a small target: the
#: protocol as defined (the classical protocols' 10-split mean); ``k >= 0`` evaluates split k alone.
ALL_SPLITS = -1

#: short name -> reader registry name
ALIASES: dict[str, str] = {
    "ma": "market1501",
    "d": "dukemtmc",
    "ms": "msmt17",
    "c3": "cuhk03np",
    "c3-labeled": "cuhk03np-labeled",
    "occ-d": "occ_duke",
    "c2": "cuhk02",
    "cs": "cuhksysu",
    "prid": "prid",
    "grid": "grid",
    "viper": "viper",
    "ilids": "ilids",
    "synth-a": "synth-a",
    "synth-b": "synth-b",
    "synth-c": "synth-c",
    "real-vtest": "real-vtest",  # real crops of vtest.avi, pseudo-labelled by tracking (python -m muva_lib real-crops)
}

KINDS = ("supervised", "single-source", "multi-source", "classical", "synthetic")


@dataclass(frozen=True)
class Protocol:
    """A named train/test recipe.

    ``sources``/``targets`` are short names (keys of :data:`ALIASES`). ``train_all``: train on
    every image of the sources (train + query + gallery, as the classical multi-source protocol
    does) instead of their training splits. ``multi_split``: a target has 10 seeded splits that
    one training serves, reported as their mean (see :func:`split_indices`).
    """

    name: str
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    kind: str
    train_all: bool = False
    reported_in: str = ""

    @property
    def source_datasets(self) -> tuple[str, ...]:
        return tuple(ALIASES[s] for s in self.sources)

    @property
    def target_datasets(self) -> tuple[str, ...]:
        return tuple(ALIASES[t] for t in self.targets)

    @property
    def multi_split(self) -> bool:
        return any(len(ix) > 1 for ix in split_indices(self).values())

    def split_trained(self, dataset: str) -> bool:
        """True when ``dataset`` is both a target and a training source read by one seeded split's
        training ids (an in-domain protocol on a small dataset), so its test splits cannot share one
        training. (A small dataset that is only a source trains on split 0's training ids.)"""
        return (not self.train_all and dataset in self.source_datasets and dataset in self.target_datasets
                and get_reader(dataset).num_splits > 1)


@dataclass(frozen=True)
class SourceInfo:
    """How one source entered the merged training set."""

    dataset: str
    num_ids: int
    num_images: int
    num_cams: int
    pid_offset: int
    cam_offset: int
    domain: int


@dataclass(frozen=True)
class ProtocolData:
    """Training items (offset ids) plus the test splits of every target.

    ``targets[name]`` holds one Split, or 10 for small datasets evaluated on all splits.
    """

    protocol: Protocol
    train: tuple[Item, ...]
    sources: tuple[SourceInfo, ...]
    targets: Mapping[str, tuple[Split, ...]] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return sum(s.num_ids for s in self.sources)

    @property
    def num_cams(self) -> int:
        return sum(s.num_cams for s in self.sources)

    @property
    def num_domains(self) -> int:
        return len(self.sources)

    def summary(self) -> dict:
        """Counts a notebook can show and a manifest can record."""
        return {
            "protocol": self.protocol.name,
            "kind": self.protocol.kind,
            "train_images": len(self.train),
            "train_ids": self.num_classes,
            "train_cams": self.num_cams,
            "sources": [s.__dict__ for s in self.sources],
            "targets": {
                name: [{"split_index": sp.split_index, **sp.summary()} for sp in splits]
                for name, splits in self.targets.items()
            },
        }


# ----------------------------------------------------------------------------- the named table

def _p(name: str, kind: str, train_all: bool = False, reported_in: str = "") -> Protocol:
    sources, _, targets = name.partition("->")
    return Protocol(name, tuple(sources.split("+")), tuple((targets or sources).split("+")), kind,
                    train_all=train_all, reported_in=reported_in)


def _named_protocols() -> dict[str, Protocol]:
    table: list[Protocol] = []
    for name in ("ma", "d", "ms", "occ-d", "c3"):
        table.append(_p(name, "supervised", reported_in="CLIP-ReID / pi-VL (in-domain)"))
    big = ("ma", "d", "ms")
    for a, b in itertools.permutations(big, 2):
        table.append(_p(f"{a}->{b}", "single-source", reported_in="MUVA Table 1"))
    for a in big:
        table.append(_p(f"{a}->c3", "single-source", reported_in="MUVA Table 2"))
    for b in big:
        table.append(_p(f"c3->{b}", "single-source", reported_in="MUVA Table 2"))
    four = ("ma", "d", "ms", "c3")
    for held_out in four:
        rest = "+".join(s for s in four if s != held_out)
        table.append(_p(f"{rest}->{held_out}", "multi-source", reported_in="MUVA Table 3"))
    for target in ("prid", "grid", "viper", "ilids"):
        table.append(_p(f"ma+d+c2+c3+cs->{target}", "classical", train_all=True,
                        reported_in="classical DG (10-split mean)"))
    for name in synthetic_protocols():
        table.append(_p(name, "synthetic", reported_in="synthetic benchmark"))
    return {p.name: p for p in table}


def synthetic_protocols() -> tuple[str, ...]:
    """Single-source around the domain cycle, then multi-source leave-one-out."""
    return (
        "synth-a->synth-b", "synth-b->synth-c", "synth-c->synth-a",
        "synth-a+synth-b->synth-c", "synth-a+synth-c->synth-b", "synth-b+synth-c->synth-a",
    )


PROTOCOLS: dict[str, Protocol] = _named_protocols()

#: ``classic->prid`` style shorthands for the classical multi-source protocols
_SHORTHANDS = {f"classic->{t}": f"ma+d+c2+c3+cs->{t}" for t in ("prid", "grid", "viper", "ilids")}


def list_protocols(kind: str | None = None) -> list[str]:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown protocol kind {kind!r}; kinds: {', '.join(KINDS)}")
    return [n for n, p in PROTOCOLS.items() if kind is None or p.kind == kind]


def get_protocol(name: str) -> Protocol:
    """A named protocol, or one parsed from ``src[+src...]->tgt`` / a bare dataset name."""
    name = name.strip().lower().replace(" ", "")
    name = _SHORTHANDS.get(name, name)
    if name in PROTOCOLS:
        return PROTOCOLS[name]
    sources, arrow, targets = name.partition("->")
    parts = sources.split("+") + (targets.split("+") if arrow else [])
    unknown = [s for s in parts if s not in ALIASES]
    if not name or unknown or (arrow and not targets):
        raise DatasetError(
            f"unknown protocol {name!r}"
            + (f" (unknown dataset name(s): {', '.join(unknown)})" if unknown else "")
            + f". Write 'src[+src...]->target' with names from: {', '.join(ALIASES)}; "
            "see `python -m muva_lib protocols` for the named table."
        )
    synthetic = all(s.startswith("synth-") for s in parts)
    kind = ("synthetic" if synthetic else "supervised" if not arrow
            else "multi-source" if "+" in sources else "single-source")
    return _p(name, kind)


# ----------------------------------------------------------------------------- building the data

def merge_sources(sources: Sequence[tuple[str, Sequence[Item]]]) -> tuple[tuple[Item, ...], tuple[SourceInfo, ...]]:
    """Concatenate the training items of several sources with pid / camera / domain offsets.

    ``sources`` is ``[(dataset, items), ...]`` with each source's pids already 0..N-1.
    Cameras are renumbered 0..C-1 per source, then offset; ``domain`` is the source index.
    """
    items: list[Item] = []
    infos: list[SourceInfo] = []
    pid_off = cam_off = 0
    seen_datasets: set[str] = set()
    for domain, (dataset, train) in enumerate(sources):
        if dataset in seen_datasets:
            raise DatasetError(f"source {dataset!r} listed twice")
        seen_datasets.add(dataset)
        pids = sorted({it.pid for it in train})
        if pids != list(range(len(pids))):
            raise DatasetError(f"{dataset}: training pids are not 0..N-1 after relabelling")
        cams = sorted({it.camid for it in train})
        cam_map = {c: i for i, c in enumerate(cams)}
        items += [replace(it, pid=it.pid + pid_off, camid=cam_map[it.camid] + cam_off, domain=domain) for it in train]
        infos.append(SourceInfo(dataset, num_ids=len(pids), num_images=len(train), num_cams=len(cams),
                                pid_offset=pid_off, cam_offset=cam_off, domain=domain))
        pid_off += len(pids)
        cam_off += len(cams)
    return tuple(items), tuple(infos)


def split_indices(proto: str | Protocol, split_index: int = ALL_SPLITS, all_splits: bool = False
                  ) -> dict[str, tuple[int, ...]]:
    """The seeded splits each target of ``proto`` is evaluated on (registry name -> indices).

    A target with one fixed split: ``(0,)`` (``split_index`` > 0 is left to the reader to refuse).
    A small target (10 splits): all of them for ``ALL_SPLITS`` (the default) or ``all_splits``
    (kept for configs written when ``split_index`` defaulted to 0), else ``(split_index,)``. A small
    target that is also a training source (:meth:`Protocol.split_trained`) is trained on one
    split's ids, so it takes one split: ``split_index``, split 0 for ``ALL_SPLITS``; ``all_splits``
    is refused for it.
    """
    proto = get_protocol(proto) if isinstance(proto, str) else proto
    if split_index < ALL_SPLITS:
        raise DatasetError(f"split_index {split_index}: expected {ALL_SPLITS} (every split) or a split number >= 0")
    out: dict[str, tuple[int, ...]] = {}
    for ds in proto.target_datasets:
        n = get_reader(ds).num_splits
        if proto.split_trained(ds):
            if all_splits:
                raise DatasetError(
                    f"protocol {proto.name!r} trains on {ds}'s training ids of one split, so its {n} test "
                    f"splits need {n} trainings: set data.split_index to one split (0..{n - 1}), not all_splits")
            out[ds] = (max(split_index, 0),)
        elif n == 1:
            out[ds] = (max(split_index, 0),)
        else:
            out[ds] = tuple(range(n)) if (all_splits or split_index == ALL_SPLITS) else (split_index,)
    return out


#: (path, size, mtime_ns) -> decode problem (None: decodes); a file is decoded once per process
_DECODED: dict[tuple[str, int, int], str | None] = {}


def _decode_problem_once(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"cannot open ({exc.strerror or exc})"
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _DECODED:
        _DECODED[key] = decode_problem(path)
    return _DECODED[key]


def undecodable(items: Sequence[Item], strict: bool = False) -> set[str]:
    """The paths among ``items`` whose pixel data does not decode (each file decoded once per process).

    Readers only check the first and last bytes of a file; this decodes it as the loaders will. Not
    strict: each dataset's bad images are counted and named in one :class:`UnreadableImageWarning`;
    strict: a DatasetError names the first one.
    """
    paths = sorted({it.path for it in items})
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:  # PIL decodes without the GIL
        problems = dict(zip(paths, pool.map(_decode_problem_once, paths)))
    bad = {p for p, why in problems.items() if why is not None}
    checks: dict[str, ImageCheck] = {}
    for it in sorted({it.path: it for it in items if it.path in bad}.values(), key=lambda it: it.path):
        checks.setdefault(it.dataset, ImageCheck(it.dataset, strict)).fail(it.path, problems[it.path])
    for check in checks.values():
        check.finish()
    return bad


def build(name: str | Protocol, *, roots: Mapping[str, str | Path] | None = None, split_index: int = ALL_SPLITS,
          all_splits: bool = False, strict: bool = False, with_targets: bool = True) -> ProtocolData:
    """Read every dataset of a protocol and return its training items and target splits.

    ``roots`` maps a dataset name (short or registry name) to its folder, overriding the default
    location. Targets hold the splits :func:`split_indices` names: by default every seeded split of
    a small target (one training, evaluated on each), ``split_index=k`` split k alone. Images whose
    pixel data does not decode are dropped (counted in a warning) or, with ``strict``, refused.
    """
    proto = get_protocol(name) if isinstance(name, str) else name
    roots = {ALIASES.get(k, k): v for k, v in (roots or {}).items()}
    indices = split_indices(proto, split_index, all_splits)
    # the classical protocol trains on every image of a source (Reader.read_all knows each
    # dataset's distractor convention); the others on the sources' training splits (a small
    # dataset's of the split it is tested on)
    sources = [(ds, read_all(ds, root=roots.get(ds), strict=strict) if proto.train_all
                else read_dataset(ds, root=roots.get(ds), strict=strict,
                                  split_index=indices[ds][0] if proto.split_trained(ds) else 0).train)
               for ds in proto.source_datasets]
    targets: dict[str, tuple[Split, ...]] = {}
    if with_targets:
        for ds in proto.target_datasets:
            targets[ds] = tuple(read_dataset(ds, root=roots.get(ds), split_index=i, strict=strict)
                                for i in indices[ds])
    tested = [it for splits in targets.values() for sp in splits for it in (*sp.query, *sp.gallery)]
    bad = undecodable([it for _, items in sources for it in items] + tested, strict)
    if bad:
        sources = [(ds, relabel([it for it in items if it.path not in bad])) for ds, items in sources]
        targets = {ds: tuple(sp.with_items(query=[it for it in sp.query if it.path not in bad],
                                           gallery=[it for it in sp.gallery if it.path not in bad])
                             for sp in splits) for ds, splits in targets.items()}
    train, infos = merge_sources(sources)
    return ProtocolData(proto, train, infos, targets)


def protocol_datasets(kind: str | None = None) -> list[str]:
    """The short names of every dataset the named protocols (of ``kind``) use, in table order."""
    return list(dict.fromkeys(s for n in list_protocols(kind) for s in (*PROTOCOLS[n].sources, *PROTOCOLS[n].targets)))


def dataset_readiness(short_names: Sequence[str]) -> dict[str, list[str]]:
    """Short dataset name -> what its default folder lacks (:meth:`Reader.missing`; ``[]``: ready)."""
    return {s: get_reader(ALIASES[s])().missing() for s in short_names}


def readiness_lines(short_names: Sequence[str]) -> list[str]:
    """One line per dataset that is not ready: its folder, what is missing and how to get it."""
    out = []
    for s, missing in dataset_readiness(short_names).items():
        if missing:
            reader = get_reader(ALIASES[s])()
            out.append(f"{s} ({reader.root}): {'; '.join(missing)}; {reader.obtain_hint()}")
    return out


def protocol_table(kind: str | None = None, check_data: bool = True) -> list[dict[str, str]]:
    """Rows for printing: name, kind, sources, targets, training images, where reported, and ``data``:
    ``ready`` when every dataset's layout is complete (:meth:`Reader.missing`), else the ones that are not."""
    ready = {s: not m for s, m in dataset_readiness(protocol_datasets(kind)).items()} if check_data else {}
    rows = []
    for pname in list_protocols(kind):
        p = PROTOCOLS[pname]
        row = {
            "protocol": p.name,
            "kind": p.kind,
            "train on": "+".join(p.sources) + (" (all images)" if p.train_all else " (train split)"),
            "test on": "+".join(p.targets) + (" (10-split mean)" if p.multi_split else ""),
            "reported in": p.reported_in,
        }
        if check_data:
            missing = [s for s in dict.fromkeys((*p.sources, *p.targets)) if not ready[s]]
            row["data"] = "ready" if not missing else "missing " + ", ".join(missing)
        rows.append(row)
    return rows

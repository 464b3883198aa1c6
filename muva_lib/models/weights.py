"""Save and load a ReidModel by component, with a metadata header checked on load (safe ``weights_only``)
and a SHA-256 of the contents verified on load (:func:`payload_sha256`, :func:`read_verified`)."""
from __future__ import annotations

import hashlib
import io
import pickle
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch

from ..utils import atomic_write_bytes
from .factory import ReidModel

__all__ = ["FORMAT", "COMPONENTS", "DEFAULT_COMPONENTS", "self_contained", "CheckpointMismatchError",
           "CorruptCheckpointError", "payload_sha256", "serialize_verified", "read_verified", "component_state",
           "save_checkpoint", "read_metadata", "load_checkpoint"]

FORMAT = "muva_lib.checkpoint/1"
#: component -> prefixes of ReidModel.state_dict() keys
COMPONENTS: dict[str, tuple[str, ...]] = {
    "image_encoder": ("image_encoder.visual.", "image_encoder.part_tokens", "image_encoder.part_pos_embed"),
    "rmp": ("image_encoder.rmp.",),
    "heads": ("bnneck.", "classifier.", "cls_bnneck.", "cls_classifier."),
    "prompts": ("prompt_learner.",),
    "text_encoder": ("text_encoder.",),
}
#: what a training checkpoint holds; the frozen text encoder is the pretrained one (add it on request)
DEFAULT_COMPONENTS = ("image_encoder", "rmp", "heads", "prompts")


def self_contained(model: ReidModel, components: Iterable[str] = DEFAULT_COMPONENTS) -> tuple[str, ...]:
    """``components`` plus the frozen text encoder when no weights file can rebuild it (random init):
    prompts are only meaningful with the text encoder they were learned against."""
    names = tuple(components)
    if model.meta.get("weights") == "random init" and "text_encoder" not in names:
        names += ("text_encoder",)
    return names
#: metadata that must agree for a component's weights to mean the same thing
_MUST_MATCH: dict[str, tuple[str, ...]] = {
    "image_encoder": ("model.arch", "image_size", "model.num_parts", "model.part_token_init", "quick_gelu"),
    "rmp": ("model.arch", "image_size", "model.num_parts", "model.rmp_num_heads", "model.rmp_layernorm",
            "model.rmp_inner_shortcut"),
    "heads": ("model.arch", "model.num_parts", "num_classes", "model.cls_head"),
    "prompts": ("model.arch", "model.num_parts", "num_classes", "model.ctx_num", "model.template_type",
                "model.domain_context", "model.text_context_length"),
    "text_encoder": ("model.arch", "model.text_context_length", "quick_gelu"),
}


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model; ``differences`` lists every mismatch."""

    def __init__(self, path: str | Path, differences: list[str]):
        self.differences = differences
        super().__init__(f"checkpoint {path} does not fit the model:\n  " + "\n  ".join(differences))


class CorruptCheckpointError(ValueError):
    """A checkpoint file cannot be read, or its contents no longer match the SHA-256 stored with them."""


def payload_sha256(obj: Any) -> str:
    """SHA-256 of a checkpoint payload: nested mappings / lists / tuples of tensors and plain values,
    walked in a fixed order (mapping keys sorted by ``repr``; tensors by dtype, shape and raw bytes), so
    the digest of what was saved equals the digest of what ``torch.load`` gives back."""
    h = hashlib.sha256()

    def walk(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy())
        elif isinstance(x, Mapping):
            h.update(f"D{len(x)}".encode())
            for k in sorted(x, key=repr):
                h.update(f"K{k!r}".encode())
                walk(x[k])
        elif isinstance(x, (list, tuple)):
            h.update(f"L{len(x)}".encode())
            for v in x:
                walk(v)
        else:
            h.update(f"V{type(x).__name__}:{x!r}".encode())
    walk(obj)
    return h.hexdigest()


def serialize_verified(blob: Mapping[str, Any]) -> bytes:
    """``torch.save`` bytes of ``blob`` plus a ``sha256`` entry holding :func:`payload_sha256` of the rest
    (the file stays a plain ``torch.load``-able dict)."""
    buf = io.BytesIO()
    torch.save({**blob, "sha256": payload_sha256(dict(blob))}, buf)
    return buf.getvalue()


def read_verified(path: str | Path, fix: str, is_format: Callable[[Any], bool], what: str) -> dict[str, Any]:
    """``torch.load`` (``weights_only``) a dict written by :func:`serialize_verified` and check its SHA-256.

    A file that cannot be read or whose contents differ from the stored digest raises
    :class:`CorruptCheckpointError` naming the file and ``fix`` (what to do); a file that fails
    ``is_format`` raises ``ValueError`` ("not a ``what``"); one of the format written before checksums
    existed loads with a warning. The returned dict has no ``sha256`` entry."""
    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as exc:
        first = (str(exc).splitlines() or [""])[0][:200]
        raise CorruptCheckpointError(f"{path} cannot be read as a checkpoint, it is truncated or damaged "
                                     f"({type(exc).__name__}: {first}); {fix}") from exc
    stored = blob.pop("sha256", None) if isinstance(blob, dict) else None
    if stored is not None:
        actual = payload_sha256(blob)
        if actual != stored:
            raise CorruptCheckpointError(f"{path} is corrupt: its contents no longer match the SHA-256 written "
                                         f"with them (stored {stored[:12]}..., now {actual[:12]}...); {fix}")
    if not is_format(blob):
        raise ValueError(f"{path} is not a {what}")
    if stored is None:
        warnings.warn(f"{path} carries no checksum (written by an older muva_lib): its integrity is not checked",
                      stacklevel=3)
    return blob


def code_version() -> str:
    """``muva_lib.__version__``; the installed metadata when the package was imported as a namespace
    (a stale editable install seen from outside the repository root)."""
    try:
        from .. import __version__
    except ImportError:
        from importlib.metadata import version

        return version("muva_lib")
    return __version__


def component_state(model: ReidModel, name: str) -> dict[str, torch.Tensor]:
    """The state-dict entries of one component (keys as in ``model.state_dict()``)."""
    if name not in COMPONENTS:
        raise KeyError(f"unknown component {name!r}; expected one of {', '.join(COMPONENTS)}")
    return {k: v for k, v in model.state_dict().items() if k.startswith(COMPONENTS[name])}


def _meta_value(meta: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = meta
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return "<absent>"
        cur = cur[part]
    return cur


def save_checkpoint(model: ReidModel, path: str | Path, components: Iterable[str] = DEFAULT_COMPONENTS,
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``{'meta': ..., 'state': {component: state_dict}}`` atomically.

    ``meta`` = format, code version, method, model config, num_classes, image size, activation, weights
    origin, component names, plus ``extra`` (epoch, stage, run config ...: plain values only).
    """
    names = list(components)
    state = {n: {k: v.detach().cpu() for k, v in component_state(model, n).items()} for n in names}
    meta = {"format": FORMAT, "code_version": code_version(), **model.meta, "components": names,
            "extra": dict(extra or {})}
    return atomic_write_bytes(path, serialize_verified({"meta": meta, "state": state}))


#: what to do about a damaged model checkpoint (the run's last.pt cannot rebuild it)
_FIX = "restore the file from a copy, or train the run again (python -m muva_lib train ...)"


def _read(path: str | Path) -> dict[str, Any]:
    return read_verified(path, _FIX, lambda b: isinstance(b, dict) and isinstance(b.get("meta"), dict)
                         and b["meta"].get("format") == FORMAT, f"muva_lib checkpoint (expected format {FORMAT})")


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata header of a checkpoint (config, method, code version, components ...)."""
    return _read(path)["meta"]


def load_checkpoint(model: ReidModel, path: str | Path, components: Iterable[str] | None = None) -> dict[str, Any]:
    """Load the given components (default: all in the file) into ``model``; returns the metadata.

    Every difference that matters for those components (config fields, classes, image size, activation,
    missing components, missing / unexpected keys, shapes) is collected and raised at once as a
    :class:`CheckpointMismatchError`; nothing is loaded then.
    """
    blob = _read(path)
    meta, state = blob["meta"], blob["state"]
    names = list(components) if components is not None else list(meta["components"])
    diffs: list[str] = []
    fields: list[str] = []
    for n in names:
        if n not in COMPONENTS:
            diffs.append(f"unknown component {n!r}")
        elif n not in state:
            diffs.append(f"component {n!r} missing from the checkpoint (it has {', '.join(state) or 'none'})")
        else:
            fields += [f for f in _MUST_MATCH[n] if f not in fields]
    for f in fields:
        mine, theirs = _meta_value(model.meta, f), _meta_value(meta, f)
        if mine != theirs:
            diffs.append(f"{f}: checkpoint {theirs!r}, model {mine!r}")
    own = model.state_dict()
    for n in (n for n in names if n in state and n in COMPONENTS):
        expected = {k for k in own if k.startswith(COMPONENTS[n])}
        got = state[n]
        missing, unexpected = sorted(expected - set(got)), sorted(set(got) - expected)
        if missing:
            diffs.append(f"{n}: keys missing from the checkpoint: {missing[:6]}{' ...' if len(missing) > 6 else ''}")
        if unexpected:
            diffs.append(f"{n}: keys the model lacks: {unexpected[:6]}{' ...' if len(unexpected) > 6 else ''}")
        diffs += [f"{n}: {k} shape checkpoint {tuple(got[k].shape)}, model {tuple(own[k].shape)}"
                  for k in sorted(expected & set(got)) if got[k].shape != own[k].shape]
    if diffs:
        raise CheckpointMismatchError(path, diffs)
    merged = {k: v for n in names for k, v in state[n].items()}
    result = model.load_state_dict(merged, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    return meta

"""The packed CLIP weights format (``muva_lib.packed_clip/1``): an open_clip state dict small enough to ship.

The text tower's token table (``token_embedding.weight``, ``[vocab, width]``: 49,408 x 256 for ``muva-tiny``)
is most of a CLIP state dict, but pretraining on captions only moves the rows of the tokens the captions use.
Pretraining therefore starts the table from :func:`init_token_table` (a seeded ``normal_(0, std)``, float32)
and never weight-decays it, so every other row stays bitwise at its init value. A packed file stores:

* every other tensor in ``float16`` (floating tensors only; integer buffers as they are);
* ``token_embedding.rows`` (int64 ``[n]``: the rows that differ bitwise from the init) and
  ``token_embedding.values`` (``[n, width]`` float16);
* safetensors metadata: ``format``, ``token_seed``, ``token_std``, ``vocab``, ``width``, ``token_init_sha256``
  (the init table's bytes, to notice a torch whose ``normal_`` draws differently), plus what
  :func:`~muva_lib.models.clip_backbone.save_clip_weights` writes (``grid``, ``quick_gelu``, ``arch``).

:func:`unpack_state_dict` rebuilds a float32 state dict. **The shipped model is the unpacked one**: its tensors
are the float16-rounded trained values (and the untouched rows their exact init), not the float32 weights
pretraining ended with; every number reported for the shipped weights is measured on the unpacked model.
"""
from __future__ import annotations

import hashlib
import json
import logging
import struct
from pathlib import Path
from typing import Any, Mapping

import torch

from ..utils import atomic_write_bytes

__all__ = ["FORMAT_FAMILY", "FORMAT", "TOKEN_KEY", "init_token_table", "pack_state_dict", "unpack_state_dict",
           "save_packed", "is_packed", "read_metadata", "file_sha256", "canonical_safetensors"]

log = logging.getLogger(__name__)

#: the ``format`` metadata of any version of the packed format, and of the one this module writes and reads
FORMAT_FAMILY = "muva_lib.packed_clip/"
FORMAT = FORMAT_FAMILY + "1"
#: the open_clip key of the text token table (the one tensor stored as changed rows)
TOKEN_KEY = "token_embedding.weight"
_ROWS, _VALUES = "token_embedding.rows", "token_embedding.values"


def init_token_table(vocab: int, width: int, seed: int, std: float = 0.02) -> torch.Tensor:
    """The token table pretraining starts from: ``[vocab, width]`` float32 on the CPU, ``normal_(0, std)`` drawn
    from a ``torch.Generator`` seeded with ``seed`` (bitwise the same on every machine with the same torch)."""
    if vocab < 1 or width < 1:
        raise ValueError(f"init_token_table: vocab={vocab}, width={width}; expected positive sizes")
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.empty(vocab, width, dtype=torch.float32).normal_(0.0, float(std), generator=gen)


def _table_sha256(table: torch.Tensor) -> str:
    return hashlib.sha256(table.contiguous().numpy().tobytes()).hexdigest()


def pack_state_dict(sd: Mapping[str, torch.Tensor], *, token_seed: int, token_std: float = 0.02,
                    dtype: torch.dtype = torch.float16) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """An open_clip state dict -> ``(tensors, metadata)`` of the packed format (see the module docstring).

    ``sd[TOKEN_KEY]`` must be float32 ``[vocab, width]``, started from ``init_token_table(vocab, width,
    token_seed, token_std)``; the rows that differ bitwise from it are stored (``dtype``), the rest rebuilt."""
    if TOKEN_KEY not in sd:
        raise ValueError(f"pack_state_dict: no {TOKEN_KEY!r} in the state dict (not an open_clip CLIP?)")
    if _ROWS in sd or _VALUES in sd:
        raise ValueError(f"pack_state_dict: the state dict already holds {_ROWS!r} / {_VALUES!r} (packed twice?)")
    table = sd[TOKEN_KEY].detach().cpu()
    if table.dtype != torch.float32 or table.dim() != 2:
        raise ValueError(f"pack_state_dict: {TOKEN_KEY} is {table.dtype} {tuple(table.shape)}; expected a float32 "
                         "[vocab, width] table (rows are compared bitwise with the float32 init)")
    vocab, width = table.shape
    init = init_token_table(vocab, width, token_seed, token_std)
    changed = (table.view(torch.int32) != init.view(torch.int32)).any(dim=1)
    rows = changed.nonzero().flatten().to(torch.int64)
    tensors = {k: _stored(v, dtype) for k, v in sd.items() if k != TOKEN_KEY}
    tensors[_ROWS] = rows
    tensors[_VALUES] = table[rows].to(dtype).contiguous()
    meta = {"format": FORMAT, "token_seed": str(int(token_seed)), "token_std": repr(float(token_std)),
            "vocab": str(vocab), "width": str(width), "token_init_sha256": _table_sha256(init),
            "dtype": str(dtype).removeprefix("torch.")}
    return tensors, meta


def _stored(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    t = t.detach().cpu()
    return (t.to(dtype) if t.is_floating_point() else t).contiguous()


def unpack_state_dict(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, str], *, name: str = "packed weights"
                      ) -> dict[str, torch.Tensor]:
    """``(tensors, metadata)`` of the packed format -> the float32 open_clip state dict (the shipped model).

    ``name`` (a file path, say) starts the error messages. The untouched token rows are rebuilt with
    :func:`init_token_table`; a torch that draws them differently (``token_init_sha256`` differs) is logged: the
    stored rows, and so every text made of them, are unaffected."""
    fmt = meta.get("format", "")
    if fmt != FORMAT:
        raise ValueError(f"{name}: format {fmt!r}; this version of muva_lib reads {FORMAT!r}")
    missing = [k for k in ("token_seed", "token_std", "vocab", "width") if k not in meta]
    missing += [k for k in (_ROWS, _VALUES) if k not in tensors]
    if missing:
        raise ValueError(f"{name}: packed weights without {', '.join(missing)}")
    vocab, width = int(meta["vocab"]), int(meta["width"])
    rows, values = tensors[_ROWS].to(torch.int64), tensors[_VALUES]
    if rows.dim() != 1 or tuple(values.shape) != (rows.numel(), width):
        raise ValueError(f"{name}: {_ROWS} {tuple(rows.shape)} and {_VALUES} {tuple(values.shape)} do not fit "
                         f"([n] and [n, {width}])")
    if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= vocab):
        raise ValueError(f"{name}: {_ROWS} outside the table's {vocab} rows")
    table = init_token_table(vocab, width, int(meta["token_seed"]), float(meta["token_std"]))
    expected = meta.get("token_init_sha256", "")
    if expected and _table_sha256(table) != expected:
        log.warning("%s: this torch draws a different initial token table than the one packed (sha256 %s..., "
                    "expected %s...); the %d stored rows are exact, the other %d rows differ", name,
                    _table_sha256(table)[:12], expected[:12], rows.numel(), vocab - rows.numel())
    table[rows] = values.to(torch.float32)
    out = {k: (v.to(torch.float32) if v.is_floating_point() else v) for k, v in tensors.items()
           if k not in (_ROWS, _VALUES)}
    out[TOKEN_KEY] = table
    return out


def canonical_safetensors(data: bytes) -> bytes:
    """``data`` (a safetensors file's bytes) with its JSON header written in one canonical form: keys sorted,
    the metadata's too, no spaces, padded with spaces to a multiple of 8 bytes. The tensor bytes and their
    offsets are untouched. safetensors writes the metadata in the order of a Rust ``HashMap``, which is seeded
    anew in every process, so two processes saving the same tensors and metadata write different bytes;
    written through this, the same weights give the same file (and sha256) in every process."""
    if len(data) < 8:
        raise ValueError(f"not a safetensors file: {len(data)} bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"not a safetensors file: a {n}-byte header in {len(data)} bytes")
    header = json.loads(data[8:8 + n])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + n:]


def save_packed(model_or_sd: torch.nn.Module | Mapping[str, torch.Tensor], path: str | Path, *, token_seed: int,
                quick_gelu: bool, arch: str, grid: tuple[int, int] | None = None, token_std: float = 0.02,
                extra_meta: Mapping[str, Any] | None = None) -> Path:
    """Write an open_clip CLIP (or its state dict) packed to ``path`` (``.safetensors``), atomically.

    ``grid``: the patch grid (rows, columns) the visual positional embedding was trained at (default: the
    model's ``visual.grid_size``; required for a bare state dict). ``extra_meta``: more metadata (values become
    strings); it may not redefine the format's own keys."""
    from safetensors.torch import save

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: packed weights are written as .safetensors")
    if isinstance(model_or_sd, torch.nn.Module):
        sd = model_or_sd.state_dict()
        if grid is None:
            grid = tuple(model_or_sd.visual.grid_size)
    else:
        sd = dict(model_or_sd)
    if grid is None:
        raise ValueError(f"{path}: save_packed of a state dict needs grid=(rows, columns) of the patch grid")
    tensors, meta = pack_state_dict(sd, token_seed=token_seed, token_std=token_std)
    base = {"grid": f"{grid[0]}x{grid[1]}", "quick_gelu": str(bool(quick_gelu)).lower(), "arch": arch}
    extra = {str(k): str(v) for k, v in (extra_meta or {}).items()}
    clash = sorted(set(extra) & (set(base) | set(meta)))
    if clash:
        raise ValueError(f"{path}: extra_meta may not redefine {', '.join(clash)}")
    return atomic_write_bytes(path, canonical_safetensors(save(tensors, metadata={**extra, **base, **meta})))


def read_metadata(path: str | Path) -> dict[str, str]:
    """The safetensors metadata of ``path`` ({} for other files or a file without any)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return {}
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata() or {})


def is_packed(path: str | Path) -> bool:
    """Whether ``path`` is a packed CLIP weights file (safetensors metadata ``format`` of this module)."""
    return read_metadata(path).get("format") == FORMAT


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()

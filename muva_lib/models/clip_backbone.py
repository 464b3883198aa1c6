"""Where CLIP weights come from (the one place that decides), and the open_clip model built around them.

Sources: random init, a file, an open_clip ``local-dir:`` folder, an open_clip tag found on this machine
(``openai``), or ``synth``: the workbench's own pretrained ``muva-tiny`` weights, shipped in the package
(``muva_lib/assets/pretrained/``, packed: :mod:`muva_lib.models.packed_weights`) and checked against their
manifest's SHA-256 before use.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Iterator, Mapping

import open_clip
import torch
import torch.nn.functional as F

from ..config import ACTIVATIONS
from ..paths import data_root, runs_root
from ..utils import atomic_write_bytes
from .packed_weights import FORMAT_FAMILY, canonical_safetensors, file_sha256, read_metadata, unpack_state_dict

__all__ = [
    "ENV_WEIGHTS", "CONFIG_DIR", "WeightsNotFoundError", "WeightsSource", "register_model_configs",
    "weights_cache_dir", "resolve_weights", "load_state_dict_file", "choose_quick_gelu", "create_clip",
    "load_clip_weights", "save_clip_weights", "arch_quick_gelu", "resize_grid_pos_embed", "openai_sha256s", "SYNTH_TAG",
    "SHIPPED_ARCH", "ENV_PRETRAINED_DIR", "shipped_dir", "shipped_manifest", "shipped_weights_path",
    "PRETRAIN_RUN_PREFIX", "pretrain_run_weights",
]

log = logging.getLogger(__name__)

#: environment variable naming a CLIP weights file; used when ``pretrained`` is a tag (``openai``)
ENV_WEIGHTS = "MUVA_CLIP_WEIGHTS"
#: our own open_clip model configs (``muva-tiny``), registered with ``open_clip.add_model_config``
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "models"
_WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
_DIR_WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "model.safetensors",
                     "open_clip_pytorch_model.pth", "pytorch_model.bin")
_OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")
_RANDOM = ("", "none", "random")

#: ``model.pretrained`` tag of the workbench's own pretrained weights (shipped in the package)
SYNTH_TAG = "synth"
#: the architecture the shipped weights belong to
SHIPPED_ARCH = "muva-tiny"
#: environment variable naming another folder for the shipped weights and their manifest (tests)
ENV_PRETRAINED_DIR = "MUVA_PRETRAINED_DIR"
_MANIFEST = "manifest.json"
_MAKE_SHIPPED = ("run `python -m muva_lib pretrain --preset default` and `python -m muva_lib pretrain ship RUN_DIR`"
                 " to make them")


#: ``model.pretrained=pretrain-run:NAME``: the final weights of this workbench's pretraining run
#: ``<runs>/pretrain/NAME/`` (e.g. the leakage control's second pretraining); the name, not a path, goes into
#: the run configs, so they read the same on every machine
PRETRAIN_RUN_PREFIX = "pretrain-run:"


class WeightsNotFoundError(FileNotFoundError):
    """Named weights (``pretrained='openai'``, the shipped ``synth``) are not on this machine; the message says
    what to fetch or run."""


@dataclass(frozen=True)
class WeightsSource:
    """Resolved origin of the CLIP weights (``kind``: random | file | local-dir | tag | synth)."""

    kind: str
    path: Path | None = None
    tag: str = ""
    model_cfg: Mapping[str, Any] | None = field(default=None, compare=False)  # local-dir config

    def describe(self) -> str:
        if self.kind == "random":
            return "random init"
        if self.kind == "synth":
            return f"synth:{self.path}"
        return f"{self.kind}:{self.tag + ' -> ' if self.tag else ''}{self.path}"


def register_model_configs() -> list[str]:
    """Make our JSON configs (``muva-tiny``) known to open_clip; idempotent. Returns their names."""
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
    if any(n not in open_clip.list_models() for n in names):
        open_clip.add_model_config(CONFIG_DIR)
    return names


def weights_cache_dir() -> Path:
    """``<data>/weights``: the folder searched for named weights (``ViT-B-16.pt`` ...)."""
    return data_root() / "weights"


def openai_sha256s() -> dict[str, str]:
    """SHA-256 prefixes of OpenAI's TorchScript releases (from the URLs open_clip knows) -> model name."""
    out = {}
    for model in open_clip.list_pretrained_models_by_tag("openai"):
        url = open_clip.get_pretrained_url(model, "openai")
        if "openaipublic" in url:
            out[url.split("/")[-2]] = model
    return out


def _hf_cached(hf_hub: str) -> Path | None:
    """A weights file of an open_clip hub entry already in the local Hugging Face cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with open_clip
        return None
    repo, fname = os.path.split(hf_hub)  # "org/repo/" -> no file name; "org/repo/file.bin" -> one
    for name in ([fname] if fname else []) + ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]:
        hit = try_to_load_from_cache(repo, name)
        if isinstance(hit, str) and os.path.isfile(hit):
            return Path(hit)
    return None


def _tag_candidates(arch: str, tag: str, cache_dir: Path) -> list[Path]:
    cfg = open_clip.get_pretrained_cfg(arch, tag)
    names = [f"{arch}-{tag}{s}" for s in _WEIGHT_SUFFIXES]
    if cfg.get("url"):
        names.insert(0, os.path.basename(cfg["url"]))  # OpenAI's own file name, e.g. ViT-B-16.pt
    cands = [cache_dir / n for n in names]
    if cfg.get("url"):
        cands.append(Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(cfg["url"]))
    return cands


def _missing_tag_message(arch: str, tag: str, searched: list[Path]) -> str:
    cfg = open_clip.get_pretrained_cfg(arch, tag)
    first = searched[0]
    lines = [f"CLIP weights {arch!r} / pretrained={tag!r} are not on this machine (no download is attempted).",
             "Fetch one of:"]
    if cfg.get("url"):
        lines.append(f"  - {cfg['url']}  (OpenAI's file {os.path.basename(cfg['url'])})")
    if cfg.get("hf_hub"):
        lines.append(f"  - https://huggingface.co/{cfg['hf_hub'].rstrip('/')}  (open_clip_model.safetensors)")
    lines += [f"and put it at {first} (the folder follows $MUVA_DATA),",
              f"or point ${ENV_WEIGHTS} at the file, or set model.pretrained=/path/to/file",
              "(model.pretrained='' builds random weights). Searched:"]
    lines += [f"  {p}" for p in searched]
    return "\n".join(lines)


def shipped_dir() -> Path:
    """The folder of the shipped pretrained weights: ``muva_lib/assets/pretrained`` (``$MUVA_PRETRAINED_DIR``
    instead when set)."""
    env = os.environ.get(ENV_PRETRAINED_DIR, "").strip()
    return Path(env).expanduser() if env else Path(__file__).resolve().parent.parent / "assets" / "pretrained"


def shipped_manifest() -> dict[str, Any]:
    """The shipped weights' ``manifest.json``: at least ``file``, ``sha256`` and ``bytes``, plus provenance
    (command, corpus, git commit, wall time, zero-shot numbers). Missing: :class:`WeightsNotFoundError`."""
    path = shipped_dir() / _MANIFEST
    if not path.is_file():
        raise WeightsNotFoundError(f"model.pretrained={SYNTH_TAG}: the shipped {SHIPPED_ARCH} weights are missing "
                                   f"(no {path}): {_MAKE_SHIPPED}")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    absent = [k for k in ("file", "sha256", "bytes") if not isinstance(manifest, dict) or k not in manifest]
    if absent:
        raise ValueError(f"{path}: the manifest lacks {', '.join(absent)}")
    return manifest


def shipped_weights_path() -> Path:
    """The shipped weights file, after checking its SHA-256 against the manifest (about 15 MB: tens of ms).

    Missing file or manifest: :class:`WeightsNotFoundError` naming the commands that make them; another
    SHA-256: ``ValueError`` naming the file and both hashes."""
    manifest = shipped_manifest()
    path = shipped_dir() / str(manifest["file"])
    if not path.is_file():
        raise WeightsNotFoundError(f"model.pretrained={SYNTH_TAG}: the shipped {SHIPPED_ARCH} weights are missing "
                                   f"(no {path}, named in {shipped_dir() / _MANIFEST}): {_MAKE_SHIPPED}")
    actual = file_sha256(path)
    if actual != str(manifest["sha256"]).lower():
        raise ValueError(f"{path}: SHA-256 {actual} differs from the manifest's {manifest['sha256']} "
                         f"({shipped_dir() / _MANIFEST}); the shipped weights were changed or damaged: restore "
                         "them (git checkout) or ship them again with `python -m muva_lib pretrain ship RUN_DIR`")
    return path


def pretrain_run_weights(name: str) -> Path:
    """``<runs>/pretrain/<name>/final.safetensors`` (what ``python -m muva_lib pretrain --out`` writes last).
    Missing: :class:`WeightsNotFoundError` saying whether the run is unfinished (resume it) or absent (make it)."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"model.pretrained={PRETRAIN_RUN_PREFIX}{name}: give the name of a folder under "
                         f"{runs_root() / 'pretrain'} (no path)")
    folder = runs_root() / "pretrain" / name
    path = folder / "final.safetensors"
    if path.is_file():
        return path
    if (folder / "config.json").is_file():
        raise WeightsNotFoundError(f"model.pretrained={PRETRAIN_RUN_PREFIX}{name}: the pretraining run {folder} has "
                                   f"not finished (no {path.name}); resume it with `python -m muva_lib pretrain "
                                   f"--out {folder}`")
    raise WeightsNotFoundError(f"model.pretrained={PRETRAIN_RUN_PREFIX}{name}: no pretraining run {folder}; make it "
                               f"with `python -m muva_lib pretrain --out {folder} [key=value ...]` (the leakage "
                               "control's recipe: README, 'Pretrained model')")


def resolve_weights(arch: str, pretrained: str | None, cache_dir: str | Path | None = None) -> WeightsSource:
    """Decide where the weights come from: nothing, a file, a ``local-dir:`` folder, a named tag, or ``synth``.

    ``synth``: the shipped ``muva-tiny`` weights (:func:`shipped_weights_path`, hash checked); another arch is
    an error. A tag (``openai``) is looked up, without any network access, in ``$MUVA_CLIP_WEIGHTS``, then
    ``<cache_dir or data/weights>/`` (OpenAI's file name ``ViT-B-16.pt`` or ``<arch>-<tag>.<ext>``),
    then open_clip's own caches (``~/.cache/clip``, the Hugging Face cache). Missing: an error that says
    which file to fetch and where to put it.
    """
    p = (pretrained or "").strip()
    if p.lower() in _RANDOM:
        return WeightsSource("random")
    if p == SYNTH_TAG:
        if arch != SHIPPED_ARCH:
            raise ValueError(f"model.pretrained={SYNTH_TAG}: the shipped weights are {SHIPPED_ARCH}'s, not "
                             f"{arch!r}'s (set model.arch={SHIPPED_ARCH}, or model.pretrained='' for random init)")
        return WeightsSource(SYNTH_TAG, shipped_weights_path(), tag=SYNTH_TAG)
    if p.startswith(PRETRAIN_RUN_PREFIX):
        return WeightsSource("file", pretrain_run_weights(p[len(PRETRAIN_RUN_PREFIX):]))
    if p.startswith("local-dir:"):
        folder = Path(p[len("local-dir:"):]).expanduser()
        cfg_file = folder / "open_clip_config.json"
        if not cfg_file.is_file():
            raise FileNotFoundError(f"{p}: expected {cfg_file} (open_clip's local-dir layout)")
        model_cfg = json.loads(cfg_file.read_text()).get("model_cfg")
        if model_cfg is None:
            raise ValueError(f"{cfg_file}: no 'model_cfg' entry")
        hits = [folder / n for n in _DIR_WEIGHT_NAMES if (folder / n).is_file()]
        hits += sorted(q for q in folder.iterdir() if q.suffix in _WEIGHT_SUFFIXES and q not in hits)
        if not hits:
            raise FileNotFoundError(f"{p}: no weights file ({', '.join(_WEIGHT_SUFFIXES)}) in {folder}")
        return WeightsSource("local-dir", hits[0], model_cfg=model_cfg)
    if os.path.isfile(os.path.expanduser(p)):
        return WeightsSource("file", Path(os.path.expanduser(p)))
    if open_clip.get_pretrained_cfg(arch, p):
        env = os.environ.get(ENV_WEIGHTS, "").strip()
        if env:
            if not os.path.isfile(os.path.expanduser(env)):
                raise WeightsNotFoundError(f"${ENV_WEIGHTS}={env} is not a file")
            return WeightsSource("tag", Path(os.path.expanduser(env)), tag=p)
        searched = _tag_candidates(arch, p, Path(cache_dir) if cache_dir else weights_cache_dir())
        for cand in searched:
            if cand.is_file():
                return WeightsSource("tag", cand, tag=p)
        hub = open_clip.get_pretrained_cfg(arch, p).get("hf_hub", "")
        hit = _hf_cached(hub) if hub else None
        if hit is not None:
            return WeightsSource("tag", hit, tag=p)
        raise WeightsNotFoundError(_missing_tag_message(arch, p, searched))
    tags = open_clip.list_pretrained_tags_by_model(arch)
    raise FileNotFoundError(f"pretrained={p!r} is neither a file nor a known tag of {arch!r} "
                            f"(tags: {', '.join(tags) or 'none'}; '' = random weights)")


# ----------------------------------------------------------------------------- reading files

def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())


def load_state_dict_file(path: str | Path, trusted_jit_sha256: Collection[str] | None = None
                         ) -> dict[str, torch.Tensor]:
    """Read a weights file safely: safetensors, or ``torch.load(weights_only=True)``.

    Accepts a plain state dict, ``{'state_dict': ...}`` and ``module.``-prefixed keys; a packed file
    (:mod:`~muva_lib.models.packed_weights`, told by its metadata) is unpacked to float32. A TorchScript
    archive (OpenAI's original ``ViT-B-16.pt``) cannot be read with ``weights_only``; it is opened with
    ``torch.jit.load`` only when its SHA-256 is one OpenAI published (or in ``trusted_jit_sha256``).
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd: Any = load_file(str(path), device="cpu")
        meta = read_metadata(path)
        if meta.get("format", "").startswith(FORMAT_FAMILY):  # another version: unpack_state_dict says so
            sd = unpack_state_dict(sd, meta, name=str(path))
    elif _is_torchscript(path):
        digest = file_sha256(path)
        trusted = set(openai_sha256s()) | set(trusted_jit_sha256 or ())
        if not any(digest.startswith(t) for t in trusted):
            raise ValueError(f"{path} is a TorchScript archive whose SHA-256 ({digest[:16]}...) is not one of "
                             "OpenAI's releases; TorchScript cannot be loaded safely. Convert it to "
                             ".safetensors or a plain state dict first.")
        with warnings.catch_warnings():  # torch 2.14 marks TorchScript deprecated; OpenAI ships nothing else
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=FutureWarning)
            sd = torch.jit.load(str(path), map_location="cpu").state_dict()
        for k in _OPENAI_EXTRA_KEYS:
            sd.pop(k, None)
    else:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    if not isinstance(sd, Mapping) or not sd:
        raise ValueError(f"{path}: expected a state dict of tensors")
    sd = dict(sd)
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


# ----------------------------------------------------------------------------- activation

def arch_quick_gelu(arch: str, model_cfg: Mapping[str, Any] | None = None) -> bool:
    """Whether ``arch`` (or the given open_clip ``model_cfg``) uses QuickGELU; our configs (``muva-tiny``) are
    registered first, so a fresh process reads them too."""
    if model_cfg is None:
        register_model_configs()
    cfg = model_cfg if model_cfg is not None else open_clip.get_model_config(arch)
    if cfg is None:
        raise ValueError(f"unknown model {arch!r}; known: {', '.join(open_clip.list_models())}")
    return bool(cfg.get("quick_gelu", False))


def choose_quick_gelu(arch: str, source: WeightsSource, activation: str = "auto") -> bool:
    """QuickGELU (OpenAI's activation) or GELU, decided from what the weights are.

    ``quick_gelu`` / ``gelu`` force it. ``auto``: a tag's registry entry (``openai`` -> QuickGELU); a
    ``local-dir`` config; the shipped ``synth`` weights: their file's metadata (required); a file: an OpenAI
    TorchScript release, a ``quick_gelu`` entry in safetensors metadata (what :func:`save_clip_weights` and
    :func:`~muva_lib.models.packed_weights.save_packed` write), ``openai`` in the path; otherwise the architecture's
    own setting, unless published weights of that architecture use both activations (ViT-B-16), where an
    unidentified file is an error rather than a silent guess.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r}; expected {', '.join(ACTIVATIONS)}")
    if activation != "auto":
        return activation == "quick_gelu"
    if source.kind == "random":
        return arch_quick_gelu(arch)
    if source.kind == "tag":
        return bool(open_clip.get_pretrained_cfg(arch, source.tag).get("quick_gelu", False))
    if source.kind == "local-dir":
        return arch_quick_gelu(arch, source.model_cfg)
    path = Path(source.path)
    meta = read_metadata(path)
    if source.kind == SYNTH_TAG and "quick_gelu" not in meta:
        raise ValueError(f"{path}: the shipped weights' metadata has no 'quick_gelu' entry (ship them again with "
                         "`python -m muva_lib pretrain ship RUN_DIR`)")
    if "quick_gelu" in meta:
        return meta["quick_gelu"].lower() == "true"
    if _is_torchscript(path) or "openai" in str(path).lower():
        return True
    published = {bool(open_clip.get_pretrained_cfg(arch, t).get("quick_gelu", False))
                 for t in open_clip.list_pretrained_tags_by_model(arch)}
    if len(published | {arch_quick_gelu(arch)}) > 1:
        raise ValueError(f"cannot tell whether {path} holds OpenAI weights (QuickGELU) or GELU-trained "
                         f"{arch} weights; set model.activation=quick_gelu (OpenAI) or model.activation=gelu")
    return arch_quick_gelu(arch)


# ----------------------------------------------------------------------------- building and loading

def resize_grid_pos_embed(pos: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int],
                          mode: str = "bilinear") -> torch.Tensor:
    """``[1 + h*w, D]`` -> ``[1 + H*W, D]``: the first (CLS) row kept, the patch grid interpolated."""
    if tuple(old_grid) == tuple(new_grid):
        return pos
    cls, grid = pos[:1], pos[1:]
    grid = grid.reshape(1, old_grid[0], old_grid[1], -1).permute(0, 3, 1, 2).float()
    align = False if mode in ("bilinear", "bicubic") else None
    grid = F.interpolate(grid, size=tuple(new_grid), mode=mode, align_corners=align)
    grid = grid.permute(0, 2, 3, 1).reshape(new_grid[0] * new_grid[1], -1).to(pos.dtype)
    return torch.cat([cls, grid], dim=0)


def _old_grid(n_patches: int, meta: Mapping[str, str]) -> tuple[int, int]:
    if "grid" in meta:
        h, w = (int(v) for v in meta["grid"].split("x"))
        if h * w == n_patches:
            return h, w
    side = int(round(n_patches ** 0.5))
    if side * side != n_patches:
        raise ValueError(f"cannot infer the patch grid of a {n_patches}-patch positional embedding "
                         "(not square and no 'grid' metadata)")
    return side, side


def load_clip_weights(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor],
                      meta: Mapping[str, str] | None = None, pos_embed_interp: str = "bilinear") -> None:
    """Load a CLIP state dict strictly: visual grid resized, text context truncated; mismatches listed.

    One key is optional both ways, ``logit_bias`` (SigLIP's loss learns it, ``create_model(init_logit_bias=)``
    adds it): a file's bias the model lacks is dropped, a model's bias the file lacks keeps its value; both are
    logged. Every other key must match."""
    sd = dict(state_dict)
    own = model.state_dict()
    if "logit_bias" in sd and "logit_bias" not in own:
        log.info("the CLIP weights hold a logit_bias (%s) the model has none of: dropped",
                 float(sd.pop("logit_bias").flatten()[0]))
    elif "logit_bias" in own and "logit_bias" not in sd:
        log.info("the CLIP weights hold no logit_bias: the model keeps its own (%s)",
                 float(own["logit_bias"].flatten()[0]))
        sd["logit_bias"] = own["logit_bias"]
    key = "visual.positional_embedding"
    if key in sd and sd[key].shape != model.visual.positional_embedding.shape:
        old = _old_grid(sd[key].shape[0] - 1, meta or {})
        sd[key] = resize_grid_pos_embed(sd[key], old, tuple(model.visual.grid_size), pos_embed_interp)
    if "positional_embedding" in sd and sd["positional_embedding"].shape[0] > model.positional_embedding.shape[0]:
        sd["positional_embedding"] = sd["positional_embedding"][: model.positional_embedding.shape[0]]
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = sorted(f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(sd) & set(own) if sd[k].shape != own[k].shape)
    if missing or unexpected or shapes:
        parts = [f"missing {missing[:8]}{' ...' if len(missing) > 8 else ''}" if missing else "",
                 f"unexpected {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}" if unexpected else "",
                 f"shape {shapes[:8]}" if shapes else ""]
        raise ValueError("CLIP weights do not fit the model: " + "; ".join(p for p in parts if p))
    model.load_state_dict(sd, strict=True)


def create_clip(arch: str, pretrained: str | None = "", image_size: tuple[int, int] = (256, 128),
                device: str | torch.device = "cpu", activation: str = "auto", context_length: int | None = None,
                pos_embed_interp: str = "bilinear", cache_dir: str | Path | None = None, **model_kwargs: Any,
                ) -> tuple[open_clip.CLIP, WeightsSource, bool]:
    """Build an open_clip CLIP at ``image_size`` (H, W) and load its weights; never downloads.

    ``model_kwargs`` go to ``open_clip.create_model`` (``init_logit_scale=``, ``init_logit_bias=``). Returns
    ``(model, source, quick_gelu)``. The visual positional embedding has ``1 + (H/p)*(W/p)`` rows
    (129 for ViT-B/16 at 256x128); loaded square grids are resized (``pos_embed_interp``).
    """
    register_model_configs()
    source = resolve_weights(arch, pretrained, cache_dir)
    name = f"local-dir:{source.path.parent}" if source.kind == "local-dir" else arch
    quick_gelu = choose_quick_gelu(arch, source, activation)
    patch = _patch_size(arch, source)
    if image_size[0] % patch or image_size[1] % patch:
        raise ValueError(f"image size {image_size} is not a multiple of the patch size {patch} of {arch!r}")
    with _no_random_init_warning():
        model = open_clip.create_model(name, pretrained=None, load_weights=False,
                                       force_image_size=tuple(image_size), force_context_length=context_length,
                                       quick_gelu=quick_gelu, **model_kwargs)
    if source.kind != "random":
        meta = read_metadata(Path(source.path))
        load_clip_weights(model, load_state_dict_file(source.path), meta, pos_embed_interp)
        log.info("loaded CLIP weights from %s (quick_gelu=%s)", source.describe(), quick_gelu)
    return model.to(torch.device(device)), source, quick_gelu


@contextlib.contextmanager
def _no_random_init_warning() -> Iterator[None]:
    """Drop open_clip's root-logger "No pretrained weights loaded" line (we load weights ourselves)."""
    def keep(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No pretrained weights loaded")

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _patch_size(arch: str, source: WeightsSource) -> int:
    cfg = source.model_cfg if source.kind == "local-dir" else open_clip.get_model_config(arch)
    if cfg is None:
        raise ValueError(f"unknown model {arch!r}; known: {', '.join(open_clip.list_models())}")
    p = cfg["vision_cfg"].get("patch_size", 16)
    return p if isinstance(p, int) else p[0]


def save_clip_weights(model: open_clip.CLIP, path: str | Path, quick_gelu: bool, arch: str = "") -> Path:
    """Write an open_clip model as ``.safetensors`` with metadata (grid, activation) our loader reads, atomically
    and in the canonical byte form (:func:`~muva_lib.models.packed_weights.canonical_safetensors`: the same
    weights give the same file in every process)."""
    from safetensors.torch import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = model.visual.grid_size
    meta = {"grid": f"{h}x{w}", "quick_gelu": str(bool(quick_gelu)).lower(), "arch": arch}
    data = save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, metadata=meta)
    atomic_write_bytes(path, canonical_safetensors(data))
    return path

"""A resolved config as a file: JSON-ready dicts, ``config.json`` written and read back (configs written
before a field existed included, :data:`FIELDS_ADDED_LATER`) and the config's hash."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from .overrides import _coerce, _unknown
from .schema import ConfigError, RunCfg, _field_types
from .validation import validate

__all__ = ["to_dict", "from_dict", "FIELDS_ADDED_LATER", "save", "load", "config_hash"]


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready nested dict (tuples become lists)."""
    return json.loads(json.dumps(asdict(cfg)))


#: Fields added after runs were written, with the value that reproduces a config written before them
#: (a saved ``config.json`` without the key gets this value from :func:`from_dict` / :func:`load`, not
#: the new default that :func:`resolve` uses). Add a line when a new field changes what a run does.
FIELDS_ADDED_LATER: dict[str, Any] = {
    "stage1.schedule": "timm",  # the cosine used to reach min_lr at the last stage-1 epoch
    "stage1.part_schedule": "continue",  # pi-VL ran one schedule over identity + part epochs before the field
}


def from_dict(data: Mapping[str, Any], cls: type = RunCfg, prefix: str = "") -> Any:
    """Build a (nested) config dataclass from a dict (a saved config), rejecting unknown keys. A field
    missing from ``data`` takes its value from :data:`FIELDS_ADDED_LATER` when listed there (``prefix``
    is the dotted path of ``cls`` in the run config, ``""`` for :class:`RunCfg`), else its default."""
    types = _field_types(cls)
    kwargs: dict[str, Any] = {}
    for k, v in data.items():
        if k not in types:
            raise ConfigError(_unknown(k, types, cls.__name__))
        typ = types[k]
        if isinstance(typ, type) and is_dataclass(typ):
            kwargs[k] = from_dict(v, typ, f"{prefix}{k}.")
        else:
            kwargs[k] = _coerce(v, typ, k)
    for k, typ in types.items():
        if k in data:
            continue
        if isinstance(typ, type) and is_dataclass(typ):
            kwargs[k] = from_dict({}, typ, f"{prefix}{k}.")
        elif f"{prefix}{k}" in FIELDS_ADDED_LATER:
            kwargs[k] = _coerce(FIELDS_ADDED_LATER[f"{prefix}{k}"], typ, k)
    return cls(**kwargs)


def save(cfg: RunCfg, path: str | Path) -> Path:
    """Write the resolved config as JSON (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(to_dict(cfg), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def load(path: str | Path) -> RunCfg:
    """Read a config written by :func:`save` (or a YAML file with the same structure)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot parse: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return validate(from_dict(data))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def config_hash(cfg: RunCfg, length: int = 10) -> str:
    """A short stable hash of the resolved config (for run manifests and caches)."""
    blob = json.dumps(to_dict(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


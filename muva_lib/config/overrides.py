"""``key=value`` overrides: parsing them, fitting a value to its field's type, applying them to a config."""
from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import is_dataclass
from typing import Any, Iterable, Mapping

import yaml

from .schema import ConfigError, RunCfg, _field_types

__all__ = ["parse_overrides", "apply_overrides"]


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """Fit a parsed value to a dataclass field's annotated type, or raise ConfigError."""
    origin = typing.get_origin(typ)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            value = [value]
        args = typing.get_args(typ)
        elem = args[0] if args else Any
        if len(args) == 2 and args[1] is Ellipsis or len(args) == 1:
            return tuple(_coerce(v, elem, key) for v in value)
        if len(args) != len(value):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)} ({value!r})")
        return tuple(_coerce(v, t, key) for v, t in zip(value, args))
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return int(value)
    if typ is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if typ is str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    return value


def _unknown(key: str, known: Iterable[str], where: str) -> str:
    known = list(known)
    close = difflib.get_close_matches(key, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; valid keys: {', '.join(known)}"
    return f"unknown config key {key!r} in {where}{hint}"


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``["stage2.epochs=2", "model.arch=muva-tiny"]`` into ``{key: value}``.

    Values are read as YAML scalars / flow sequences (``2``, ``1e-4``, ``true``, ``[30, 50]``),
    so strings need no quotes. An item without ``=`` is an error.
    """
    out: dict[str, Any] = {}
    for item in items:
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        out[key] = value
    return out


def apply_overrides(cfg: RunCfg, overrides: Mapping[str, Any]) -> RunCfg:
    """Return a copy of ``cfg`` with dotted-key overrides applied and type-checked."""
    cfg = dataclasses.replace(cfg)  # shallow copy of the top level
    for sub in ("data", "vge", "parsing", "model", "stage1", "stage2", "eval"):
        setattr(cfg, sub, dataclasses.replace(getattr(cfg, sub)))
    for key, value in overrides.items():
        parts = key.split(".")
        target: Any = cfg
        for i, name in enumerate(parts):
            types = _field_types(type(target))
            if name not in types:
                where = ".".join(parts[:i]) or "the run config"
                raise ConfigError(_unknown(name, types, where))
            typ = types[name]
            if i == len(parts) - 1:
                if isinstance(typ, type) and is_dataclass(typ):
                    raise ConfigError(f"{key} is a group; set one of its fields ({key}.<name>=...)")
                setattr(target, name, _coerce(value, typ, key))
            else:
                if not (isinstance(typ, type) and is_dataclass(typ)):
                    raise ConfigError(f"{'.'.join(parts[:i + 1])} is a value, not a group (in {key!r})")
                target = getattr(target, name)
    return cfg


def _as_mapping(overrides: Mapping[str, Any] | Iterable[str] | str | None) -> Mapping[str, Any]:
    """Overrides as a dict: a dict, a list of ``key=value`` strings or one whitespace-separated string."""
    if isinstance(overrides, str):
        return parse_overrides(overrides.split())
    if overrides is not None and not isinstance(overrides, Mapping):
        return parse_overrides(overrides)
    return overrides or {}


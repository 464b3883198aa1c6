"""Print a resolved config: its differences from the dataclass defaults and where each came from.

Sources, in the order they apply (later wins): ``preset P``, ``method M`` (and ``method B (parent of M)``
for the recipe it builds on), ``preset P x method M``, ``argument`` (--protocol / --seed),
``ablation A``, ``override`` (key=value). ``--all`` prints every key, defaults included.
"""
from __future__ import annotations

import argparse
import json
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", default="muva", help="a method of muva_lib.methods (default muva)")
    parser.add_argument("--preset", default="paper", help="paper | smoke (default paper)")
    parser.add_argument("--protocol", default=None, help="data.protocol (default: the config's)")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: the config's)")
    parser.add_argument("--ablation", default=None, help="an ablation of the method (muva_lib.config.ABLATIONS)")
    parser.add_argument("--all", action="store_true", help="every key, not only those that differ from the defaults")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def _shown(value: Any) -> str:
    """A value as a config file or override would write it (lists for tuples, JSON strings)."""
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def config_rows(method: str = "muva", preset: str = "paper", *, protocol: str | None = None,
                seed: int | None = None, ablation: str | None = None, overrides: Any = None,
                every_key: bool = False) -> list[dict[str, str]]:
    """``key | value | default | source`` rows of the resolved config (ConfigError for an unknown
    method, preset, ablation or key): the keys whose value differs from the default, or every key."""
    from ..config import RunCfg, _get, config_keys, resolve_with_sources

    cfg, sources = resolve_with_sources(method, preset, protocol, seed, overrides, ablation=ablation)
    defaults = RunCfg()
    rows = []
    for key in config_keys():
        value, default = _get(cfg, key), _get(defaults, key)
        if every_key or value != default:
            rows.append({"key": key, "value": _shown(value), "default": _shown(default),
                         "source": sources.get(key, "default")})
    return rows


def run(args: argparse.Namespace) -> int:
    """Errors of the method, preset, ablation or keys propagate to ``python -m muva_lib`` (one line, exit 2)."""
    from ..tables import format_table

    rows = config_rows(args.method, args.preset, protocol=args.protocol, seed=args.seed, ablation=args.ablation,
                       overrides=list(args.overrides), every_key=args.all)
    what = f"{args.method} / {args.preset}" + (f" / ablation {args.ablation}" if args.ablation else "")
    if not rows:
        print(f"{what}: the defaults (--all prints every key)")
        return 0
    print(f"{what}: {'every key' if args.all else f'{len(rows)} keys differ from the defaults'}\n")
    print(format_table(rows, columns=("key", "value", "default", "source")))
    return 0

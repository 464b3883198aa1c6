"""Resolving a run's config: defaults -> preset -> method recipes -> preset x method -> arguments ->
ablation -> user overrides, and which layer set each key."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from .overrides import _as_mapping, apply_overrides, parse_overrides
from .presets import PRESETS, __getattr__, _registry, ablation_overrides
from .schema import ConfigError, RunCfg
from .validation import validate

__all__ = ["resolve_layers", "resolve_with_sources", "resolve"]


def resolve_layers(method: str = "muva", preset: str = "paper", protocol: str | None = None,
                   seed: int | None = None, overrides: Mapping[str, Any] | Iterable[str] | str | None = None,
                   *, ablation: str | None = None) -> list[tuple[str, Mapping[str, Any]]]:
    """The ``(source, overrides)`` layers :func:`resolve` applies to the defaults, in order: the preset,
    the method's recipes from the base one down (``method clipreid (parent of pivl)``, ``method pivl``),
    the preset's adjustment of the method, the ``protocol`` / ``seed`` arguments, the ablation and
    the user overrides."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    methods = _registry()
    if method not in methods.names():
        raise ConfigError(f"unknown method {method!r}; valid methods: {', '.join(methods.names())}")
    recipe = methods.get(method)
    layers: list[tuple[str, Mapping[str, Any]]] = [("argument", {"method": method, "preset": preset}),
                                                   (f"preset {preset}", PRESETS[preset])]
    for name, own in recipe.override_layers():
        layers.append((f"method {name}" + (f" (parent of {method})" if name != method else ""), own))
    layers.append((f"preset {preset} x method {method}", recipe.preset_overrides.get(preset, {})))
    args = {**({"data.protocol": protocol} if protocol is not None else {}), **({"seed": seed} if seed is not None else {})}
    layers.append(("argument", args))
    if ablation:
        owner = __getattr__("ABLATIONS").get(ablation)
        if owner is not None and owner.method != method:
            raise ConfigError(f"ablation {ablation!r} changes {owner.method}'s recipe, not {method}'s")
        layers.append((f"ablation {ablation}", parse_overrides(ablation_overrides(ablation))))
    layers.append(("override", _as_mapping(overrides)))
    return [(source, layer) for source, layer in layers if layer]


def resolve_with_sources(method: str = "muva", preset: str = "paper", protocol: str | None = None,
                         seed: int | None = None, overrides: Mapping[str, Any] | Iterable[str] | str | None = None,
                         *, ablation: str | None = None) -> tuple[RunCfg, dict[str, str]]:
    """:func:`resolve`'s config and, for every dotted key a layer set, the source of its value (the last
    layer that set it, :func:`resolve_layers`); keys missing from the dict keep their default."""
    cfg, sources = RunCfg(), {}
    for source, layer in resolve_layers(method, preset, protocol, seed, overrides, ablation=ablation):
        cfg = apply_overrides(cfg, layer)
        sources.update(dict.fromkeys(layer, source))
    return validate(cfg), sources


def resolve(method: str = "muva", preset: str = "paper", protocol: str | None = None,
            seed: int | None = None, overrides: Mapping[str, Any] | Iterable[str] | str | None = None,
            *, ablation: str | None = None) -> RunCfg:
    """Defaults -> preset -> method (its parent recipes first) -> preset x method -> ablation -> overrides.
    ``overrides`` may be a dict, a list of ``key=value`` strings or one whitespace-separated string of
    them (the notebooks' form); ``ablation`` names one of :data:`ABLATIONS` (``variant`` included)."""
    return resolve_with_sources(method, preset, protocol, seed, overrides, ablation=ablation)[0]


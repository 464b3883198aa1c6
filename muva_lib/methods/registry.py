"""The method registry: ``register(recipe)``, ``get(name)``, ``names()``.

A recipe (:class:`Recipe`) is one method's difference from the recipe it builds on (its ``parent``):
config overrides, adjustments per preset and the ablations that switch one part of it off. This
module is a leaf (no ``muva_lib`` import). :mod:`muva_lib.config` reads the recipes on first use of
``METHODS`` / ``ABLATIONS`` (resolving or validating a config), which imports the recipe modules and
with them torch, the losses and the samplers; ``import muva_lib`` alone does not.
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping

__all__ = ["Recipe", "register", "get", "names", "recipes"]


class Recipe:
    """One method. Subclass the recipe it builds on and set, relative to that parent:

    ``name``: the ``method`` value of a config; ``stage1_identity``: the identity phase its ``stage1.loss``
    names; ``overrides``: dotted ``key -> value`` applied after the
    preset (the dataclass defaults are the base); ``preset_overrides``: ``preset -> {key: value}`` applied
    after the method (a subclass inherits its parent's unless it sets its own); ``ablations``: ``name ->
    config.Ablation`` of this method (not inherited)."""

    name: ClassVar[str] = ""
    overrides: ClassVar[Mapping[str, Any]] = {}
    preset_overrides: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    ablations: ClassVar[Mapping[str, Any]] = {}
    #: stage 1's identity phase (a :class:`muva_lib.methods.extras.IdentityPhase`), picked by ``stage1.loss``
    stage1_identity: ClassVar[Any] = None

    @classmethod
    def parent(cls) -> type["Recipe"] | None:
        """The recipe this one builds on (None for a base recipe)."""
        base = cls.__mro__[1]
        return base if base is not Recipe and issubclass(base, Recipe) else None

    @classmethod
    def lineage(cls) -> list[type["Recipe"]]:
        """The recipes from the base one down to this one."""
        chain: list[type[Recipe]] = []
        recipe: type[Recipe] | None = cls
        while recipe is not None:
            chain.append(recipe)
            recipe = recipe.parent()
        return chain[::-1]

    @classmethod
    def override_layers(cls) -> list[tuple[str, Mapping[str, Any]]]:
        """``(recipe name, its own overrides)`` from the base recipe down: applied in order they give
        the method's config overrides."""
        return [(r.name, r.__dict__.get("overrides", {})) for r in cls.lineage()]

    @classmethod
    def flat_overrides(cls) -> dict[str, Any]:
        """Every override of the lineage, the later recipe winning (``config.METHODS[name]``)."""
        out: dict[str, Any] = {}
        for _, layer in cls.override_layers():
            out.update(layer)
        return out

    @classmethod
    def training_extras(cls, cfg: Any) -> Any:
        """The :class:`muva_lib.methods.extras.TrainingExtras` a run of ``cfg`` needs from this recipe, or
        None. Decided by the config, not its ``method`` (an override can switch a part on in any method)."""
        return None

    @classmethod
    def own_ablations(cls) -> Mapping[str, Any]:
        return cls.__dict__.get("ablations", {})


_REGISTRY: dict[str, type[Recipe]] = {}


def register(recipe: type[Recipe]) -> type[Recipe]:
    """Add ``recipe`` under its ``name`` (usable as a class decorator); a name taken twice is an error."""
    if not recipe.name:
        raise ValueError(f"{recipe.__name__} has no name")
    if recipe.name in _REGISTRY and _REGISTRY[recipe.name] is not recipe:
        raise ValueError(f"method {recipe.name!r} is registered twice ({_REGISTRY[recipe.name].__name__}, "
                         f"{recipe.__name__})")
    _REGISTRY[recipe.name] = recipe
    return recipe


def get(name: str) -> type[Recipe]:
    """The recipe of method ``name``; ValueError naming the known ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def names() -> list[str]:
    """The registered methods, in registration (table) order."""
    return list(_REGISTRY)


def recipes() -> list[type[Recipe]]:
    return list(_REGISTRY.values())

"""The method registry: one recipe per method, each written relative to the recipe it builds on."""
from __future__ import annotations

import pytest

from muva_lib import config
from muva_lib.methods import ClipReid, Muva, Pivl, Recipe, get, names, registry


def test_names_in_table_order_and_lineage():
    assert names() == ["muva", "clipreid", "pivl"]
    assert get("pivl") is Pivl and Pivl.parent() is ClipReid and Muva.parent() is ClipReid
    assert ClipReid.parent() is None
    assert [r.name for r in Pivl.lineage()] == ["clipreid", "pivl"]


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown method 'nope'; valid methods: muva, clipreid, pivl"):
        get("nope")


def test_config_tables_come_from_the_recipes():
    assert config.METHODS["pivl"] == {**ClipReid.overrides, **Pivl.overrides}
    assert config.PRESET_METHODS == {("smoke", "clipreid"): {"data.pad": 0, "data.erase_prob": 0.0},
                                     ("smoke", "pivl"): {"data.pad": 0, "data.erase_prob": 0.0,
                                                         "stage1.epochs": 4, "stage1.part_epochs": 2}}
    assert list(config.ABLATIONS) == [*Muva.ablations, *Pivl.ablations]
    assert all(a.method == r.name for r in (Muva, Pivl) for a in r.ablations.values())


def test_muva_is_clipreid_with_the_defaults_put_back():
    """The dataclass defaults are MUVA's values: MUVA's recipe resets exactly the keys CLIP-ReID changes."""
    assert set(Muva.overrides) == set(ClipReid.overrides)
    defaults = config.RunCfg()
    assert all(config._get(defaults, k) == v for k, v in Muva.overrides.items())


def test_a_fourth_method_is_one_recipe(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    class LongPivl(Pivl):
        name = "long-pivl"
        overrides = {"stage1.part_epochs": 40}

    registry.register(LongPivl)
    cfg, sources = config.resolve_with_sources("long-pivl", "paper")
    assert cfg.method == "long-pivl" and cfg.stage1.part_epochs == 40 and cfg.stage2.w_fusion == 1.0
    assert sources["stage1.part_epochs"] == "method long-pivl"
    assert sources["stage2.w_fusion"] == "method pivl (parent of long-pivl)"
    assert sources["stage1.loss"] == "method clipreid (parent of long-pivl)"
    assert config.resolve("long-pivl", "smoke").stage1.epochs == 4  # pi-VL's smoke adjustment is inherited
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(type("Other", (Recipe,), {"name": "long-pivl"}))


def _imports(path):
    """Every module a file imports, module-level and deferred, as absolute ``muva_lib...`` names."""
    import ast

    package = "muva_lib." + ".".join(path.relative_to(path.parents[1]).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            out.add(f"{base}.{node.module}" if base and node.module else base or node.module)
    return out


def test_methods_never_import_train_and_the_registry_is_a_leaf():
    from pathlib import Path

    import muva_lib.methods

    folder = Path(muva_lib.methods.__file__).parent
    for path in folder.glob("*.py"):
        assert not [m for m in _imports(path) if m.startswith("muva_lib.train")], path.name
    assert not [m for m in _imports(folder / "registry.py") if m.startswith("muva_lib")]


def test_no_method_name_in_the_training_code_paths():
    """train/ asks the recipes (hooks): no method name in its code (docstrings and comments may name them)."""
    import ast
    from pathlib import Path

    import muva_lib.train

    for path in Path(muva_lib.train.__file__).parent.glob("*.py"):
        if path.name == "bench_step.py":  # the benchmark times named methods on purpose
            continue
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                   and id(n) not in docs]
        names = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name)]
        names += [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)]
        for word in ("muva", "clipreid", "pivl"):
            assert word not in [s.lower() for s in strings], (path.name, word)
            assert not [n for n in names if word in n.lower()], (path.name, word)

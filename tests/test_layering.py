"""The import layering: no module imports a later pipeline stage (muva_lib.layering.ORDER), every module has a
stage, and the package docstring's code map lists the order; the checker itself on tiny synthetic packages."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import muva_lib
from muva_lib.layering import ORDER, check

PACKAGE = Path(muva_lib.__file__).resolve().parent


@pytest.fixture(scope="module")
def report():
    return check(PACKAGE)


def test_no_module_imports_a_later_stage(report):
    assert report.edges, "no imports found: the checker reads nothing"
    if report.violations:  # pytest.fail: the message alone, not the report's repr
        pytest.fail("imports of a later stage:\n" + "\n".join(map(str, report.violations)), pytrace=False)


def test_every_module_has_a_stage(report):
    if report.unstaged:
        pytest.fail("\n".join(report.lines(["unstaged"])), pytrace=False)


def test_the_order_and_its_exceptions_name_only_what_exists(report):
    if report.unknown or report.stale:
        pytest.fail("\n".join(report.lines(["unknown"])), pytrace=False)


def _code_map(doc: str) -> list[list[str]]:
    """The stages of the docstring's code map: a line ``  <n>  <name>[/][*]  what it holds`` starts stage n, a
    line without a number adds a name to the stage above."""
    stages: list[list[str]] = []
    for line in doc.split("Code map:", 1)[1].splitlines():
        m = re.match(r" {2,}(?:(\d+) +)?(\w+)/?\*? {2,}\S", line)
        if m is None:
            continue
        if m.group(1) is not None:
            assert int(m.group(1)) == len(stages), f"code map stage numbers out of sequence at: {line!r}"
            stages.append([])
        stages[-1].append(m.group(2))
    return stages


def test_the_code_map_lists_the_order():
    expected = [list(stage) for stage in ORDER]
    assert _code_map(muva_lib.__doc__) == expected, (
        "the code map in muva_lib/__init__.py's docstring differs from muva_lib.layering.ORDER; its stages should "
        "be:\n" + "\n".join(f"{i:4}  {', '.join(s)}" for i, s in enumerate(expected)))


# --- the checker on tiny synthetic packages ---

ORDER3 = (("leaf",), ("mid", "mid2"), ("top", "__init__"))


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    """A package ``pkg`` with the modules of ORDER3 (empty) and ``files`` (relative path -> source)."""
    root = tmp_path / "pkg"
    for rel, text in {"__init__.py": "", "leaf.py": "", "mid.py": "", "mid2.py": "", "top/__init__.py": "",
                      **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _upward(root: Path, order=ORDER3, suborders=None) -> list[tuple[str, int, str, str]]:
    report = check(root, order, suborders or {})
    assert not report.unstaged and not report.unknown, report.lines()
    return [(v.edge.importer, v.edge.line, v.edge.imported, v.edge.kind) for v in report.violations]


def test_downward_and_same_stage_imports_pass(tmp_path):
    root = _package(tmp_path, {"mid.py": "import pkg.leaf\nfrom . import mid2\nfrom .leaf import x\n",
                               "top/__init__.py": "from .. import mid, leaf\nfrom ..mid2 import y\n",
                               "__init__.py": "from .top import z\n"})
    assert _upward(root) == []


def test_an_upward_import_is_caught_with_file_line_and_stages(tmp_path):
    root = _package(tmp_path, {"leaf.py": "import os\n\nimport pkg.mid\n"})
    report = check(root, ORDER3, {})
    assert [(v.edge.importer, v.edge.line, v.edge.imported) for v in report.violations] == [("pkg.leaf", 3, "pkg.mid")]
    msg = str(report.violations[0])
    assert msg.startswith(f"{Path('pkg', 'leaf.py')}:3: pkg.leaf imports pkg.mid (module-level)")
    assert "stage 0 (leaf)" in msg and "stage 1 (mid/mid2)" in msg


def test_deferred_type_checking_and_relative_imports_are_caught(tmp_path):
    root = _package(tmp_path, {
        "leaf.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .top import T\n\n"
                    "def f():\n    from . import mid2\n    return mid2\n"),
        "mid.py": "class C:\n    def g(self):\n        from pkg.top import sub\n",
        "top/sub.py": "", "top/deep/__init__.py": "",
        "top/deep/x.py": "from ... import leaf\n"})  # downward, three levels up from a sub-subpackage module
    assert _upward(root) == [("pkg.leaf", 3, "pkg.top", "TYPE_CHECKING"), ("pkg.leaf", 6, "pkg.mid2", "deferred"),
                             ("pkg.mid", 3, "pkg.top.sub", "deferred")]


def test_import_module_with_a_literal_or_fstring_name_is_caught(tmp_path):
    root = _package(tmp_path, {"leaf.py": ("import importlib\nimportlib.import_module('pkg.mid')\n"
                                           "def f(n):\n    return importlib.import_module(f'pkg.top.{n}')\n"
                                           "importlib.import_module(f'.{n}', __name__)\n"
                                           "importlib.import_module(f'{__name__}.x')\n"),
                               "mid.py": "import importlib\nimportlib.import_module('.top', 'pkg')\n"})
    assert _upward(root) == [("pkg.leaf", 2, "pkg.mid", "import_module"), ("pkg.leaf", 4, "pkg.top", "import_module"),
                             ("pkg.mid", 2, "pkg.top", "import_module")]
    # a name known only at run time is listed (not checked): here the head reaches no further than the root
    assert [(e.line, e.imported) for e in check(root, ORDER3, {}).dynamic] == [(5, "f'.{n}'")]


def test_importing_the_package_root_is_no_edge(tmp_path):
    root = _package(tmp_path, {"leaf.py": "from . import __version__\nimport pkg\n", "__init__.py": "__version__ = 1\n"})
    assert _upward(root) == []


def test_unstaged_modules_and_unknown_names_are_reported(tmp_path):
    root = _package(tmp_path, {"extra.py": ""})
    report = check(root, (("leaf", "ghost"), ("mid", "mid2"), ("top", "__init__")), {"top": (("a",),)})
    assert report.unstaged == ["pkg.extra"] and report.unknown == ["pkg.ghost", "pkg.top.a"]
    assert report.lines(["unstaged"]) == ["pkg.extra belongs to no stage: add it to ORDER in muva_lib/layering.py"]
    assert report.lines(["unknown"])[1].startswith("pkg.top.a is in SUBORDERS['top'] but no such module")
    assert not check(root, (("leaf",), ("mid", "mid2", "extra"), ("top", "__init__")), {"nope": ()}).ok
    with pytest.raises(ValueError, match="'mid' is in stage 1 and in stage 2"):
        check(root, (("leaf",), ("mid",), ("mid", "mid2", "top", "__init__")), {})


def test_exceptions_allow_an_upward_import_and_must_stay_in_use(tmp_path):
    root = _package(tmp_path, {"leaf.py": "def f():\n    import pkg.mid\n"})
    allowed = check(root, ORDER3, {}, exceptions={("pkg.leaf", "pkg.mid"): "why"})
    assert allowed.ok and not allowed.violations
    stale = check(root, ORDER3, {}, exceptions={("pkg.leaf", "pkg.mid"): "why", ("pkg.mid", "pkg.top"): "why"})
    assert stale.lines() == ["EXCEPTIONS[('pkg.mid', 'pkg.top')] matches no upward import: remove it"]


def test_an_order_inside_a_subpackage(tmp_path):
    root = _package(tmp_path, {"top/__init__.py": "from .b import y\n",  # the package's front door: not checked
                               "top/a.py": "from . import b\n", "top/b/__init__.py": "from ..a import x\n",
                               "top/b/c.py": "from pkg.top.a import x\n"})
    assert _upward(root, suborders={"top": (("a",), ("b",))}) == [("pkg.top.a", 1, "pkg.top.b", "module-level")]
    assert "SUBORDERS['top']" in str(check(root, ORDER3, {"top": (("a",), ("b",))}).violations[0])

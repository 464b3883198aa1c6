"""Rewrite muva_lib module paths in the given files after the issue-13 layout moves.

Usage: python tools_rewrite_imports.py [--map MOVES.txt] [--check] FILE...

MOVES.txt holds one ``old.dotted.module -> new.dotted.module`` per line (``#`` comments allowed).
A package entry (``muva_lib.parsing -> muva_lib.human_parsing``) also moves its submodules; the
longest matching entry wins. Rewritten forms:

* absolute dotted names anywhere in the text: ``from muva_lib.x.y import``, ``import muva_lib.x.y``,
  strings such as ``"muva_lib.eval.bench:main"`` or ``mock.patch("muva_lib.x.y.f")``, slash
  paths such as ``muva_lib/x/y.py``, and quoted package-relative names of a moved module such as
  config's ``_lazy("data.loading", ...)`` (only a whole quoted string that names an old module);
* relative imports inside the package (``from ..x.y import a``, ``from . import y``), resolved
  against the file's own module (taken from its path below the ``muva_lib`` folder) and written
  back relative to it. A relative import that does not resolve to an existing module from the
  file's place is resolved against the file's old place (a file moved by a merge whose body still
  imports relative to where it was).
* ``from muva_lib.x import y, z`` where ``muva_lib.x.y`` moved: ``y`` gets its own statement
  ``from <new parent> import <new name> as y`` (the name the code uses stays bound; no ``as`` when
  the name did not change), ``z`` stays in ``from muva_lib.x import z`` (one-line lists only).

``--check`` prints the files that would change and exits 1 when any would.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PKG = "muva_lib"
ROOT = Path(__file__).resolve().parent


def read_moves(path: Path) -> dict[str, str]:
    """``{old dotted module: new dotted module}`` from a MOVES.txt file."""
    moves: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "->" not in line:
            raise SystemExit(f"{path}:{n}: expected 'old.module -> new.module', got {line!r}")
        old, new = (s.strip() for s in line.split("->", 1))
        moves[old] = new
    return moves


def map_module(name: str, moves: dict[str, str]) -> str:
    """``name`` after the moves (longest matching entry; unchanged when none matches)."""
    for old in sorted(moves, key=len, reverse=True):
        if name == old or name.startswith(old + "."):
            return moves[old] + name[len(old):]
    return name


def module_of(path: Path) -> tuple[str, bool] | None:
    """``(dotted module, is_package_init)`` of a file below a ``muva_lib`` folder, else ``None``."""
    parts = path.resolve().with_suffix("").parts
    if PKG not in parts:
        return None
    idx = len(parts) - 1 - parts[::-1].index(PKG)
    mod = list(parts[idx:])
    is_init = mod[-1] == "__init__"
    if is_init:
        mod = mod[:-1]
    return ".".join(mod), is_init


def exists(module: str) -> bool:
    """Whether ``module`` is a module or package of this checkout."""
    base = ROOT.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def resolve(dots: int, rest: str, package: str) -> str:
    """Absolute name of ``from <dots><rest> import`` written in package ``package``."""
    base = package.split(".")
    base = base[:len(base) - (dots - 1)] if dots > 1 else base
    return ".".join(base + ([rest] if rest else []))


def relative(target: str, package: str) -> tuple[int, str]:
    """``(dots, rest)`` naming ``target`` relative to ``package`` (both inside muva_lib)."""
    t, p = target.split("."), package.split(".")
    common = 0
    while common < min(len(t), len(p)) and t[common] == p[common]:
        common += 1
    return len(p) - common + 1, ".".join(t[common:])


FROM_REL = re.compile(r"^(?P<indent>[ \t]*)from[ \t]+(?P<dots>\.+)(?P<rest>[\w.]*)[ \t]+import[ \t]+(?P<names>.*)$",
                      re.MULTILINE)
FROM_ABS = re.compile(r"^(?P<indent>[ \t]*)from[ \t]+(?P<mod>muva_lib(?:\.\w+)*)[ \t]+import[ \t]+(?P<names>[\w, \t]+"
                      r"(?:[ \t]+as[ \t]+\w+)?)[ \t]*(?P<tail>#.*)?$", re.MULTILINE)


def _names(names: str) -> tuple[list[tuple[str, str | None]], str] | None:
    """``([(name, alias), ...], comment)`` of a one-line import list (``None`` for a parenthesised one)."""
    body, _, comment = names.partition("#")
    items = [re.fullmatch(r"\s*(\w+)(?:\s+as\s+(\w+))?\s*", part) for part in body.split(",")]
    if not items or any(m is None for m in items):
        return None
    return [(m.group(1), m.group(2)) for m in items], (f"#{comment}" if comment else "")


def _split_import(parent: str, names: str, moves: dict[str, str]) -> list[tuple[str, str]] | None:
    """``from parent import a, b`` (``parent`` as written, before the moves) as new ``[(parent, names)]``
    statements when some imported name is itself a moved module (it keeps its local name), else ``None``."""
    parsed = _names(names)
    if parsed is None:
        return None
    items, comment = parsed
    if all(map_module(f"{parent}.{n}", moves) == f"{parent}.{n}" for n, _ in items):
        return None
    out: dict[str, list[str]] = {}
    for name, alias in items:
        old = f"{parent}.{name}"
        new = map_module(old, moves)
        if new == old:
            out.setdefault(map_module(parent, moves), []).append(name if alias is None else f"{name} as {alias}")
            continue
        new_parent, new_name = new.rsplit(".", 1)
        bound = alias or name
        out.setdefault(new_parent, []).append(new_name if new_name == bound else f"{new_name} as {bound}")
    stmts = [(mod, ", ".join(parts)) for mod, parts in out.items()]
    if comment:
        stmts[0] = (stmts[0][0], f"{stmts[0][1]}  {comment}")
    return stmts


def rewrite_text(text: str, path: Path, moves: dict[str, str]) -> str:
    """``text`` of the file at ``path`` with every moved module path rewritten."""
    where = module_of(path)
    reverse = {v: k for k, v in moves.items()}

    def rel_sub(m: re.Match[str]) -> str:
        if where is None:
            return m.group(0)
        module, is_init = where
        package = module if is_init else module.rsplit(".", 1)[0]
        dots, rest, names = len(m.group("dots")), m.group("rest"), m.group("names")
        target = written = resolve(dots, rest, package)
        if not exists(target) and map_module(target, moves) == target:
            old_module = map_module(module, reverse)
            old_package = old_module if is_init else old_module.rsplit(".", 1)[0]
            target = resolve(dots, rest, old_package)
        new_target = map_module(target, moves)
        stmts = _split_import(target, names, moves) or [(new_target, names)]
        if stmts == [(written, names)]:
            return m.group(0)
        lines = []
        for mod, text in stmts:
            d, r = relative(mod, package)
            lines.append(f"{m.group('indent')}from {'.' * d}{r} import {text}")
        return "\n".join(lines)

    def abs_from_sub(m: re.Match[str]) -> str:
        names = m.group("names") + (f"  {m.group('tail')}" if m.group("tail") else "")
        stmts = _split_import(m.group("mod"), names, moves)
        if stmts is None:
            return m.group(0)
        return "\n".join(f"{m.group('indent')}from {mod} import {text}" for mod, text in stmts)

    text = FROM_REL.sub(rel_sub, text)
    text = FROM_ABS.sub(abs_from_sub, text)
    olds = sorted(moves, key=len, reverse=True)
    dotted = re.compile(r"(?<![\w.])(" + "|".join(re.escape(o) for o in olds) + r")(?![\w])")
    text = dotted.sub(lambda m: moves[m.group(1)], text)
    short = [o[len(PKG) + 1:] for o in olds if o.count(".") >= 2]
    if short:  # lazy-import strings relative to the package, e.g. config's _lazy("data.loading", ...)
        quoted = re.compile(r"([\"'])(" + "|".join(re.escape(o) for o in short) + r")\1")
        text = quoted.sub(lambda m: m.group(1) + moves[f"{PKG}.{m.group(2)}"][len(PKG) + 1:] + m.group(1), text)
    slashed = re.compile(r"(?<![\w/])(" + "|".join(re.escape(o.replace(".", "/")) for o in olds) + r")(?=\.py\b|/)")
    return slashed.sub(lambda m: moves[m.group(1).replace("/", ".")].replace(".", "/"), text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--map", type=Path, default=ROOT / "MOVES.txt")
    ap.add_argument("--check", action="store_true", help="only list the files that would change")
    ap.add_argument("files", nargs="+", type=Path)
    args = ap.parse_args(argv)
    moves = read_moves(args.map)
    changed = []
    for f in args.files:
        old = f.read_text()
        new = rewrite_text(old, f, moves)
        if new != old:
            changed.append(f)
            if not args.check:
                f.write_text(new)
    for f in changed:
        print(f)
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Plain-text and Markdown tables (results tables in the paper's layout build on ``format_table``)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = ["format_table", "fmt_pct"]


def fmt_pct(value: float | None, digits: int = 1) -> str:
    """A 0..1 fraction as a percentage string (``0.5234 -> '52.3'``); ``None`` -> ``'-'``."""
    return "-" if value is None else f"{100.0 * value:.{digits}f}"


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                 markdown: bool = True) -> str:
    """Rows of dicts as a fixed-width pipe table (valid Markdown when ``markdown``).

    Columns default to the keys of the first row, in order; missing cells print as ``-``.
    Numbers are printed as given: round them before calling to keep outputs stable.
    """
    if not rows:
        return "(no rows)"
    cols = list(columns or rows[0].keys())
    cells = [[("-" if r.get(c) is None else str(r.get(c))) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    out = [line(cols), sep if markdown else sep.replace("|", "+")]
    out += [line(row) for row in cells]
    return "\n".join(out)

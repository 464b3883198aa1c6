"""Append-only JSONL files that survive a kill: one write per batch + fsync, torn last lines cut with a warning.

A process killed in the middle of :func:`append_lines` leaves at most one torn last line (bytes
after the last newline). Readers skip it (:func:`complete_lines`); the next writer cuts it off
(:func:`cut_torn_tail`) with a warning naming the file and the line, so the record it held is
written again. A bad line *before* the last one is never guessed at: readers raise, naming the
file and line. Used by the grounding store and by the synthetic generator's progress log.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterable

__all__ = ["complete_lines", "cut_torn_tail", "append_lines"]


def complete_lines(path: str | Path) -> list[tuple[int, bytes]]:
    """``[(line number, bytes)]`` of the newline-terminated, non-blank lines; a torn last line is left out."""
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")[:-1]  # the piece after the last newline is empty or torn
    return [(n, line) for n, line in enumerate(lines, 1) if line.strip()]


def cut_torn_tail(path: str | Path) -> int:
    """Cut the bytes after the last newline (a torn last line); return how many were removed.

    Opens the file for writing only when there is something to cut, so a complete file in a
    read-only folder is never touched. Warns with ``<path>:<line>``.
    """
    path = Path(path)
    if not path.is_file():
        return 0
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    with open(path, "rb+") as fh:
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    line = data.count(b"\n") + 1
    warnings.warn(f"{path}:{line}: removed a torn last line ({len(data) - keep} bytes) left by an interrupted "
                  "run; its record is written again", stacklevel=3)
    return len(data) - keep


def append_lines(path: str | Path, records: Iterable[Any], sort_keys: bool = True) -> int:
    """Cut a torn tail, then append one JSON line per record with one write, flush and fsync.

    NaN and infinity are refused (``allow_nan=False``): a line is always valid JSON. With
    ``sort_keys=False`` the keys keep their order, so that ``json.dumps(json.loads(line))``
    gives the line back byte for byte. Returns the number of records written.
    """
    path = Path(path)
    blob = "".join(json.dumps(r, sort_keys=sort_keys, allow_nan=False) + "\n" for r in records).encode("utf-8")
    if not blob:
        return 0
    cut_torn_tail(path)
    with open(path, "ab") as fh:
        fh.write(blob)
        fh.flush()
        os.fsync(fh.fileno())
    return blob.count(b"\n")

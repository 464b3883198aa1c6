"""The papers' reported numbers as data: each table of MUVA (and the baselines it quotes), with its source."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["PaperTable", "PAPER_TABLES", "paper_rows", "parse_pair"]


@dataclass(frozen=True)
class PaperTable:
    """A table of reported numbers: columns are protocol names; each row is
    ``(method, source, "mAP/R1 mAP/R1 ...")`` in percent, ``-`` where not reported."""

    name: str
    title: str
    protocols: tuple[str, ...]
    rows: tuple[tuple[str, str, str], ...]


_T1 = "MUVA Table 1"
_T2 = "MUVA Table 2"
_T3 = "MUVA Table 3"
_DIFF = "DiffReID README (3rd party)"

#: Reported numbers (muva_spec.md section 5; peers.md 9.1, 9.2; pivl_notes.md). ``*``: input larger
#: than 256x128; ``‡``: extra pre-training data; ``†`` as in the paper.
PAPER_TABLES: dict[str, PaperTable] = {t.name: t for t in (
    PaperTable("table1", "Table 1: single-source DG, mAP / R1 (%)",
               ("ma->d", "ma->ms", "d->ma", "d->ms", "ms->ma", "ms->d"), (
                   ("MUVA", _T1, "52.0/72.1 27.6/56.8 51.4/78.3 26.8/55.7 59.5/82.7 62.0/77.8"),
                   ("CLIP-ReID", _DIFF, "51.7/69.6 23.0/48.9 - - 51.5/76.2 58.0/74.9"),
                   ("DCAC", _T1, "49.5/69.1 23.4/52.1 42.3/71.5 19.7/47.4 52.1/77.9 58.4/75.0"),
                   ("CLIP-FGDI*", _T1, "41.6/64.1 20.2/47.0 48.6/75.7 25.2/53.8 44.7/73.0 47.5/66.9"),
                   ("DMRL", _T1, "- 21.5/50.6 - - 55.1/81.3 -"),
                   ("MMET", _T1, "- 26.8/50.1 - - 40.6/76.3 -"),
                   ("PAT", _T1, "48.9/67.9 18.2/42.8 45.2/71.9 19.2/43.9 47.3/72.2 54.9/71.4"),
                   ("QAConv-MS*", _T1, "- 19.9/49.7 - - 54.5/83.0 -"),
                   ("IGMG*", _T1, "41.6/64.2 - 42.1/75.8 - 53.5/80.9 61.6/77.7"),
                   ("TransMatcher*", _T1, "42.6/61.8 18.4/47.3 46.9/77.5 20.7/52.8 52.0/80.1 50.8/67.9"),
                   ("LDU", _T1, "38.0/59.5 13.5/35.7 42.3/73.2 16.7/44.2 44.8/74.6 48.9/69.2"),
                   ("STL", _T1, "- 19.8/48.9 - - 54.0/82.5 -"),
               )),
    PaperTable("table2", "Table 2: single-source DG with CUHK03-NP, mAP / R1 (%)",
               ("ma->c3", "d->c3", "ms->c3", "c3->ma", "c3->d", "c3->ms"), (
                   ("MUVA", _T2, "38.8/40.8 29.4/31.1 40.2/42.0 45.1/70.2 45.6/66.7 21.0/49.8"),
                   ("CLIP-ReID", _DIFF, "38.5/39.9 - 38.9/40.2 - - -"),
                   ("DCAC", _T2, "32.5/33.2 23.0/23.5 34.1/34.4 42.0/68.6 43.2/64.8 17.8/47.3"),
                   ("PAT", _T2, "26.0/25.4 18.9/18.8 - - - -"),
                   ("STL", _T2, "26.9/27.7 - 24.5/25.6 - - -"),
                   ("QAConv-MS*", _T2, "24.9/26.6 - 28.5/31.0 - - -"),
                   ("MLFP", _T2, "- - - 39.0/70.4 33.8/57.0 -"),
                   ("GN", _T2, "14.5/14.4 10.3/10.2 - 40.6/67.6 31.2/50.0 11.9/33.4"),
               )),
    PaperTable("table3", "Table 3: multi-source DG (leave one out), mAP / R1 (%)",
               ("d+ms+c3->ma", "ma+ms+c3->d", "ma+d+c3->ms", "ma+d+ms->c3"), (
                   ("MUVA", _T3, "66.7/86.1 63.8/79.4 34.5/63.1 48.6/49.6"),
                   ("ISR*‡", _T3, "70.5/87.0 - 30.3/56.4 37.8/36.6"),
                   ("QAConv-MS*", _T3, "65.2/87.1 - 25.9/57.7 40.3/44.0"),
                   ("SVIL", _T3, "65.0/86.1 61.7/77.3 19.9/44.6 43.2/44.1"),
                   ("DCAC", _T3, "56.7/80.0 58.9/75.4 27.5/56.7 42.5/43.6"),
                   ("CLIP-FGDI*", _T3, "46.3/77.9 51.0/70.4 28.8/56.7 34.4/35.6"),
                   ("PAT", _T3, "51.7/75.2 56.5/71.8 21.6/45.6 31.5/31.1"),
                   ("DCCL", _T3, "63.2/85.3 60.0/75.9 20.5/47.4 38.7/40.3"),
                   ("RILL†", _T3, "63.5/84.1 56.9/74.8 20.7/45.8 38.7/40.1"),
                   ("M3L", _T3, "48.1/74.5 50.5/69.4 12.9/33.0 29.9/30.7"),
               )),
    PaperTable("in_domain", "Supervised in-domain, mAP / R1 (%)", ("ms", "ma", "d", "occ-d"), (
        ("CLIP-ReID ViT-B/16", "CLIP-ReID paper (peers.md 9.1)", "73.4/88.7 89.6/95.5 82.5/90.0 59.5/67.1"),
        ("CLIP-ReID ViT-B/16 + SIE + OLP", "CLIP-ReID paper (peers.md 9.1)",
         "75.8/89.7 90.5/95.4 83.1/90.8 60.3/67.2"),
        ("CLIP-ReID RN50", "CLIP-ReID paper (peers.md 9.1)", "63.0/84.4 89.8/95.7 80.7/90.0 53.5/61.0"),
        ("pi-VL ViT-B/16", "pi-VL paper", "76.5/90.3 91.2/96.2 84.0/92.1 61.0/68.3"),
        ("pi-VL RN50", "pi-VL paper", "63.8/85.0 90.2/96.1 81.3/91.2 54.0/61.8"),
    )),
)}

#: display names of the methods in tables


def parse_pair(text: str) -> tuple[float, float] | None:
    if text == "-":
        return None
    m, r = text.split("/")
    return float(m), float(r)


def paper_rows(table: str) -> pd.DataFrame:
    """The reported rows of ``PAPER_TABLES[table]`` in long form: method, source, protocol, mAP, R1 (%)."""
    t = PAPER_TABLES[table]
    out = []
    for method, source, values in t.rows:
        cells = values.split()
        if len(cells) != len(t.protocols):
            raise ValueError(f"{table} / {method}: {len(cells)} cells for {len(t.protocols)} protocols")
        for proto, c in zip(t.protocols, cells):
            pair = parse_pair(c)
            if pair is not None:
                out.append({"method": method, "source": source, "protocol": proto, "mAP": pair[0], "R1": pair[1]})
    return pd.DataFrame(out, columns=["method", "source", "protocol", "mAP", "R1"])

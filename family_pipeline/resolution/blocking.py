"""Blocking: which records are compared at all.

Several passes, each a key over the records (national id; birth date with last name; birth date
with first name; last with first name and birth year; the unordered pair of first and last name
with the birth date, which catches swapped parts). A pair found by any pass is a candidate.
Blocks larger than a pass's cap are skipped and counted, so one common key cannot blow the
candidate set up; the other passes still reach those records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["BlockingPass", "candidate_pairs", "combine_keys", "pairs_within"]


@dataclass(frozen=True)
class BlockingPass:
    name: str
    columns: tuple[str, ...]
    #: blocks with more records than this are skipped (and reported)
    cap: int = 60
    #: keep only pairs where a side lacks one of these fields: a pass whose key grows with the
    #: population (namesakes) is only for records the sharper passes cannot reach
    only_when_missing: tuple[str, ...] = ()


def combine_keys(columns: list[np.ndarray]) -> np.ndarray:
    """One int64 code per row for a tuple of integer columns; -1 when any part is missing (< 0)."""
    frame = pd.DataFrame({str(i): c for i, c in enumerate(columns)})
    missing = np.zeros(len(frame), bool)
    for c in columns:
        missing |= np.asarray(c) < 0
    codes = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy().astype(np.int64)
    codes[missing] = -1
    return codes


def pairs_within(groups: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray, int]:
    """All pairs (i < j) of rows sharing a group code (>= 0) in blocks of 2..cap rows.

    Returns (i, j, rows in skipped oversized blocks). Vectorised by offset: the k-th round pairs
    every row with the row k places after it in its block.
    """
    idx = np.flatnonzero(groups >= 0)
    g = groups[idx]
    order = np.argsort(g, kind="stable")
    idx, g = idx[order], g[order]
    if len(g) == 0:
        empty = np.empty(0, np.int64)
        return empty, empty, 0
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, len(g)])
    size_of = np.repeat(sizes, sizes)
    pos = np.arange(len(g)) - np.repeat(starts, sizes)
    skipped = int(sizes[sizes > cap].sum())
    usable = (size_of >= 2) & (size_of <= cap)
    active = np.flatnonzero(usable & (pos + 1 < size_of))
    out_i, out_j = [], []
    k = 1
    while len(active):
        out_i.append(idx[active])
        out_j.append(idx[active + k])
        k += 1
        active = active[pos[active] + k < size_of[active]]
    if not out_i:
        empty = np.empty(0, np.int64)
        return empty, empty, skipped
    i, j = np.concatenate(out_i), np.concatenate(out_j)
    return np.minimum(i, j), np.maximum(i, j), skipped


def candidate_pairs(table: dict[str, np.ndarray], passes: list[BlockingPass]) -> tuple[np.ndarray, np.ndarray, dict]:
    """Distinct candidate pairs over every pass, sorted; and per-pass statistics."""
    n = len(next(iter(table.values())))
    chunks, stats = [], {}
    for p in passes:
        groups = combine_keys([table[c] for c in p.columns])
        i, j, skipped = pairs_within(groups, p.cap)
        if p.only_when_missing:
            keep = np.zeros(len(i), bool)
            for f in p.only_when_missing:
                keep |= (table[f][i] < 0) | (table[f][j] < 0)
            i, j = i[keep], j[keep]
        chunks.append(i * n + j)
        stats[p.name] = {"pairs": int(len(i)), "records_in_skipped_blocks": skipped}
    codes = np.unique(np.concatenate(chunks)) if chunks else np.empty(0, np.int64)
    stats["distinct_pairs"] = int(len(codes))
    return codes // n, codes % n, stats

"""Comparison levels of candidate pairs, field by field.

Every field gives a small integer level per pair: -1 when either side is missing (no evidence),
0 for disagreement and higher levels for closer agreement. Names are compared by Jaro-Winkler on
their normalised keys, and only where the keys differ; swapped first and last names are compared
crosswise. Dates agree exactly, or by a typo (one of day, month, year differs, or day and month
are swapped). Identifiers agree exactly or by one keystroke (one digit changed or two adjacent
ones swapped: optimal string alignment distance 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from rapidfuzz import process
from rapidfuzz.distance import OSA, JaroWinkler

__all__ = ["FIELDS", "LEVELS", "compare"]

#: field -> number of agreement levels above "disagree" (level values 0..n)
LEVELS = {"national_id": 3, "last_name": 3, "first_name": 3, "patronymic": 3, "birth_date": 3, "sex": 1, "region": 1}
FIELDS = tuple(LEVELS)
#: Jaro-Winkler similarity for "nearly the same name" (level 2) and "similar" (level 1)
CLOSE, SIMILAR = 0.92, 0.80


def _texts(keys: np.ndarray | pa.Array, codes: np.ndarray) -> list:
    """keys[codes] as Python strings (the keys a numpy or an Arrow array)."""
    return keys.take(pa.array(codes)).to_pylist() if isinstance(keys, pa.Array) else keys[codes].tolist()


def _similarity(keys: np.ndarray, a: np.ndarray, b: np.ndarray, scorer) -> np.ndarray:
    """Score of keys[a] against keys[b] (symmetric scorers), each distinct pair of codes once."""
    if len(a) == 0:
        return np.empty(0, float)
    lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
    inverse, distinct = pd.factorize(lo * (len(keys) + 1) + hi)
    ua, ub = distinct // (len(keys) + 1), distinct % (len(keys) + 1)
    scores = process.cpdist(_texts(keys, ua), _texts(keys, ub), scorer=scorer, workers=-1)  # every core
    return np.asarray(scores, float)[inverse]


def _name_level(codes: np.ndarray, keys: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    a, b = codes[i], codes[j]
    level = np.full(len(i), -1, np.int8)
    both = (a >= 0) & (b >= 0)
    level[both & (a == b)] = 3
    diff = np.flatnonzero(both & (a != b))
    sim = _similarity(keys, a[diff], b[diff], JaroWinkler.normalized_similarity)
    level[diff] = np.where(sim >= CLOSE, 2, np.where(sim >= SIMILAR, 1, 0))
    return level


def _cross_level(ln: np.ndarray, fn: np.ndarray, keys: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Level of last(i)~first(j) and first(i)~last(j) together (min of the two), -1 if missing."""
    a1, b1, a2, b2 = ln[i], fn[j], fn[i], ln[j]
    ok = (a1 >= 0) & (b1 >= 0) & (a2 >= 0) & (b2 >= 0)
    out = np.full(len(i), -1, np.int8)
    idx = np.flatnonzero(ok)
    s1 = _similarity(keys, a1[idx], b1[idx], JaroWinkler.normalized_similarity)
    s2 = _similarity(keys, a2[idx], b2[idx], JaroWinkler.normalized_similarity)
    s = np.minimum(s1, s2)
    same = (a1[idx] == b1[idx]) & (a2[idx] == b2[idx])
    out[idx] = np.where(same, 3, np.where(s >= CLOSE, 2, np.where(s >= SIMILAR, 1, 0)))
    return out


def _date_level(days: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    a, b = days[i], days[j]
    level = np.full(len(i), -1, np.int8)
    both = (a != NO_DATE) & (b != NO_DATE)
    level[both] = 0
    level[both & (a == b)] = 3
    idx = np.flatnonzero(both & (a != b))
    if len(idx):
        da = a[idx].astype("datetime64[D]")
        db = b[idx].astype("datetime64[D]")
        ya, yb = da.astype("datetime64[Y]"), db.astype("datetime64[Y]")
        ma, mb = da.astype("datetime64[M]").astype(np.int64) % 12, db.astype("datetime64[M]").astype(np.int64) % 12
        dda = (da - da.astype("datetime64[M]")).astype(np.int64)
        ddb = (db - db.astype("datetime64[M]")).astype(np.int64)
        differ = (ya != yb).astype(int) + (ma != mb) + (dda != ddb)
        swapped = (ya == yb) & (ma == ddb) & (mb == dda)
        level[idx] = np.where((differ == 1) | swapped, 2, 0)
    return level


NO_DATE = np.iinfo(np.int64).min


def _id_level(codes: np.ndarray, keys: np.ndarray, checked: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Exact (3); one keystroke apart where at least one side fails its check digit (2), since two
    valid numbers one digit apart are as likely two people born the same day; else 0."""
    a, b = codes[i], codes[j]
    level = np.full(len(i), -1, np.int8)
    both = (a >= 0) & (b >= 0)
    level[both & (a == b)] = 3
    diff = np.flatnonzero(both & (a != b))
    dist = _similarity(keys, a[diff], b[diff], OSA.distance)
    typo = ~(checked[a[diff]] & checked[b[diff]])
    level[diff] = np.where((dist <= 1) & typo, 2, 0)
    return level


def _equal_level(codes: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    a, b = codes[i], codes[j]
    return np.where((a < 0) | (b < 0), -1, (a == b).astype(np.int8)).astype(np.int8)


#: pairs compared at once: the temporaries of a chunk (name pairs as Python strings above all)
#: stay bounded however many candidates a country has
CHUNK = 2_000_000


def compare(rec: dict[str, np.ndarray], vocab: dict[str, np.ndarray], i: np.ndarray, j: np.ndarray,
            fields: tuple[str, ...] = FIELDS) -> dict[str, np.ndarray]:
    """Levels per field for the pairs (i, j) of records ``rec`` (integer codes; see linker);
    ``fields`` limits the work to the fields asked for. Pairs are compared in chunks of
    ``CHUNK``; each pair's levels depend on that pair alone."""
    if len(i) <= CHUNK:
        return _compare(rec, vocab, i, j, fields)
    out: dict[str, np.ndarray] = {}
    for start in range(0, len(i), CHUNK):
        part = _compare(rec, vocab, i[start:start + CHUNK], j[start:start + CHUNK], fields)
        for f, levels in part.items():
            if f not in out:
                out[f] = np.empty(len(i), levels.dtype)
            out[f][start:start + len(levels)] = levels
    return out


def _compare(rec: dict[str, np.ndarray], vocab: dict[str, np.ndarray], i: np.ndarray, j: np.ndarray,
             fields: tuple[str, ...]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if "national_id" in fields:
        out["national_id"] = _id_level(rec["national_id"], vocab["national_id"], vocab["national_id_checked"], i, j)
    if "last_name" in fields or "first_name" in fields:
        names = vocab["name"]
        ln = _name_level(rec["last_name"], names, i, j)
        fn = _name_level(rec["first_name"], names, i, j)
        # swapped parts: where straight comparison is weak, compare crosswise
        weak = np.flatnonzero((ln < 2) & (fn < 2) & (ln >= 0) & (fn >= 0))
        if len(weak):
            cross = _cross_level(rec["last_name"], rec["first_name"], names, i[weak], j[weak])
            better = cross > np.maximum(ln[weak], fn[weak])
            ln[weak[better]] = cross[better]
            fn[weak[better]] = cross[better]
        out["last_name"], out["first_name"] = ln, fn
    if "patronymic" in fields:
        out["patronymic"] = _name_level(rec["patronymic"], vocab["patronymic"], i, j)
    if "birth_date" in fields:
        out["birth_date"] = _date_level(rec["birth_date"], i, j)
    if "sex" in fields:
        out["sex"] = _equal_level(rec["sex"], i, j)
    if "region" in fields:
        out["region"] = _equal_level(rec["region"], i, j)
    return {f: out[f] for f in FIELDS if f in out}

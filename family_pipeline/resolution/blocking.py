"""Blocking: which records are compared at all.

Several passes, each a key over the records (national id; birth date with last name; birth date
with first name; last with first name and birth year; the unordered pair of first and last name
with the birth date, which catches swapped parts). A pair found by any pass is a candidate.
Blocks larger than a pass's cap are skipped and counted, so one common key cannot blow the
candidate set up; the other passes still reach those records. A pass with ``one_per`` takes one
record per value of that field in each block: the name passes see one signature per IIN, so
their pairs grow with the population rather than with the square of its namesakes (at 1M
persons 15.0M candidate pairs became 8.7M, with pairwise F1 0.9951 → 0.9954).

Everything here works on integer codes with sorts: a sort of packed 64-bit keys (key bits above,
row index below) is several times cheaper than an argsort or a hash table at national size, and
it is stable by construction.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["BlockingPass", "candidate_pairs", "combine_keys", "dense_codes", "dictionary_codes", "first_appearances",
           "group_order",
           "pairs_within",
           "release_free_memory", "reusing_freed_memory", "sorted_unique", "tuple_hashes"]


@dataclass(frozen=True)
class BlockingPass:
    name: str
    columns: tuple[str, ...]
    #: blocks with more records than this are skipped (and reported)
    cap: int = 60
    #: keep only pairs where a side lacks one of these fields: a pass whose key grows with the
    #: population (namesakes) is only for records the sharper passes cannot reach
    only_when_missing: tuple[str, ...] = ()
    #: in each block, only the first record of each value of this field takes part (records
    #: without one all do): a person's four or five signatures under one IIN are already paired
    #: by the IIN pass, so a namesake pass pairs the person once, not every signature with every
    #: namesake's — the pairs grow with the population, not with the square of its namesakes
    one_per: str | None = None


#: packed pair codes unpacked into their two sides this many at a time
_UNPACK_SLICE = 1 << 22

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_DEFAULT_THRESHOLD = 128 * 1024
_reuse_depth = 0


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc
        return None


@contextmanager
def reusing_freed_memory():
    """While inside, glibc keeps freed memory for the next allocation instead of handing every
    large array back to the kernel and faulting fresh pages in for the next one. Linkage makes
    thousands of short-lived national-size arrays; at 1M persons this halves the system time
    (30 s of 85 s CPU). On leaving, the defaults come back and the memory is returned."""
    global _reuse_depth
    libc = _libc()
    if libc is None or _reuse_depth:
        _reuse_depth += 1
        try:
            yield
        finally:
            _reuse_depth -= 1
        return
    import ctypes

    _reuse_depth += 1
    libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(1 << 30))
    libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(1 << 30))
    libc.mallopt(_M_TOP_PAD, ctypes.c_int(256 << 20))
    try:
        yield
    finally:
        _reuse_depth -= 1
        libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(_DEFAULT_THRESHOLD))
        libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(_DEFAULT_THRESHOLD))
        libc.mallopt(_M_TOP_PAD, ctypes.c_int(0))
        libc.malloc_trim(ctypes.c_size_t(0))


def _bits(n: int) -> int:
    return max(int(n).bit_length(), 1)


def group_order(keys: np.ndarray) -> np.ndarray:
    """Stable argsort of non-negative int64 keys (ties keep row order)."""
    keys = np.asarray(keys, np.int64)
    n = len(keys)
    if n == 0:
        return np.empty(0, np.int64)
    shift = _bits(n)
    top = int(keys.max())
    if top < 0 or keys.min() < 0 or _bits(top) + shift > 62:
        return np.argsort(keys, kind="stable")
    packed = keys << shift  # in place from here: national arrays, one temporary at a time
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    packed &= (1 << shift) - 1
    return packed


def sorted_unique(values: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """np.unique of an int64 array by one sort (numpy's hash-based unique is far slower);
    ``in_place`` sorts ``values`` itself instead of a copy (a national array held once less)."""
    if in_place:
        s = values
        s.sort()
    else:
        s = np.sort(np.asarray(values, np.int64))
    if len(s) == 0:
        return s
    distinct = np.empty(len(s), bool)
    distinct[0] = True
    np.not_equal(s[1:], s[:-1], out=distinct[1:])
    return s[distinct]


def first_appearances(codes: np.ndarray) -> np.ndarray:
    """Whether each row is the first of its code, for codes numbered in order of first
    appearance (``dense_codes``): a first row raises the running maximum."""
    if len(codes) == 0:
        return np.empty(0, bool)
    seen = np.maximum.accumulate(codes)
    return np.r_[True, seen[1:] > seen[:-1]]


def dense_codes(columns: list[np.ndarray]) -> np.ndarray:
    """One code per distinct tuple of integer columns, numbered 0..k-1 in order of first appearance.

    Each tuple is hashed into 64 bits and the hashes are numbered in order of first appearance by
    one hash table (``pd.factorize``); the numbering is then checked against the tuples
    themselves, and only if two distinct tuples shared a hash are the codes made by sorts
    instead (``_sorted_dense_codes``: the same codes, exact by construction). At 5M persons the
    67M mentions' signatures took 57 s of sorts.
    """
    n = len(columns[0]) if columns else 0
    if n == 0:
        return np.empty(0, np.int64)
    codes = _hashed_codes(columns)
    return codes if codes is not None else _sorted_dense_codes(columns)


_MIX = np.uint64(0x9E3779B97F4A7C15)
_FINAL = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def tuple_hashes(columns: list[np.ndarray], salt: int = 0) -> np.ndarray:
    """A 64-bit hash of each row's tuple of integer columns (``salt`` gives another hash of the
    same tuples, for when two of them collide)."""
    h = np.full(len(columns[0]), salt, np.uint64)
    for column in columns:
        h *= _MIX
        h += np.asarray(column).astype(np.uint64)  # -1 and other negatives wrap, alike on every row
    # the splitmix64 finalizer (a bijection): spreads the bits for the hash table
    h ^= h >> np.uint64(30)
    h *= _FINAL[0]
    h ^= h >> np.uint64(27)
    h *= _FINAL[1]
    h ^= h >> np.uint64(31)
    return h


def _hashed_codes(columns: list[np.ndarray]) -> np.ndarray | None:
    """``dense_codes`` by hashing, or None when two distinct tuples share a hash."""
    h = tuple_hashes(columns)
    codes, _ = pd.factorize(h, use_na_sentinel=False)  # numbered in order of first appearance
    del h
    codes = np.asarray(codes, np.int64)
    first = np.flatnonzero(first_appearances(codes))  # the row each code was first seen on
    for column in columns:
        c = np.asarray(column)
        if not np.array_equal(c, c[first][codes]):
            return None
    return codes


def _sorted_dense_codes(columns: list[np.ndarray]) -> np.ndarray:
    """``dense_codes`` by sorts: columns are packed into one 64-bit key while the key and a row
    index fit in it together, and renumbered in between, so any number of columns costs a few
    packed sorts of the rows."""
    n = len(columns[0])
    room = max(62 - _bits(n), 8)  # key bits that leave room for the row index
    code = np.zeros(n, np.int64)
    width = 1  # every code is below width
    for column in columns:
        c = np.asarray(column, np.int64)
        lo, hi = int(c.min()), int(c.max())
        if _bits(hi - lo + 1) > room:  # values spread wide (a sentinel): renumber them first
            c = _first_appearance(c)
            lo, hi = 0, int(c.max())
        span = hi - lo + 1
        if _bits(width) + _bits(span) > room:
            code = _first_appearance(code)
            width = int(code.max()) + 1
            if _bits(width) + _bits(span) > room:
                c = _first_appearance(c)
                lo, span = 0, int(c.max()) + 1
        code *= span
        code += c - lo if lo else c
        width = width * span
    return _first_appearance(code)


def _first_appearance(keys: np.ndarray) -> np.ndarray:
    """Codes 0..k-1 of int64 keys, numbered by the first row holding each key."""
    n = len(keys)
    if n == 0:
        return np.empty(0, np.int64)
    keys = np.asarray(keys, np.int64)
    lo, hi = int(keys.min()), int(keys.max())
    if _bits(hi - lo + 1) <= 62:
        order = group_order(keys - lo if lo else keys)
    else:
        order = np.argsort(keys, kind="stable")
    sk = keys[order]
    start = np.r_[True, sk[1:] != sk[:-1]]
    group = np.cumsum(start)
    group -= 1  # group number in key order
    first_row = order[start]  # the first row of each group (stable sort: smallest index)
    rank = np.empty(len(first_row), np.int64)
    rank[group_order(first_row)] = np.arange(len(first_row))
    out = np.empty(n, np.int64)
    out[order] = rank[group]
    return out


def dictionary_codes(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """(int32 code per row into the distinct values in order of first appearance, -1 missing;
    the distinct values, left in Arrow), by Arrow's dictionary encoding: no Python object per
    value, and a chunked column's text is not copied when its chunks share one dictionary."""
    encoded = pc.dictionary_encode(values)
    chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    if not chunks or not all(c.dictionary.equals(chunks[-1].dictionary) for c in chunks):
        chunks = [pc.dictionary_encode(values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values)]
    codes = np.concatenate([c.indices.fill_null(-1).to_numpy(zero_copy_only=False) for c in chunks])
    return codes.astype(np.int32, copy=False), chunks[-1].dictionary


def combine_keys(columns: list[np.ndarray]) -> np.ndarray:
    """One int64 code per row for a tuple of integer columns; -1 when any part is missing (< 0)."""
    n = len(columns[0]) if columns else 0
    missing = np.zeros(n, bool)
    for c in columns:
        missing |= np.asarray(c) < 0
    keep = np.flatnonzero(~missing)
    codes = np.full(n, -1, np.int64)
    if len(keep):
        codes[keep] = dense_codes([np.asarray(c)[keep] for c in columns])
    return codes


def pairs_within(groups: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray, int]:
    """All pairs (i < j) of rows sharing a group code (>= 0) in blocks of 2..cap rows.

    Returns (i, j, rows in skipped oversized blocks), the sides in int32 below 2^31 rows.
    Vectorised by offset: the k-th round pairs every row with the row k places after it in its
    block.
    """
    # rows, positions and block sizes in int32 below 2^31 rows: six arrays of the rows in a pass
    # (19M signatures with an id at 5M persons), held while its pairs are written
    small = np.int32 if len(groups) <= np.iinfo(np.int32).max else np.int64
    idx = np.flatnonzero(groups >= 0)
    g = groups[idx]
    order = group_order(g)
    g = g[order]
    idx = idx[order].astype(small)
    del order
    if len(g) == 0:
        empty = np.empty(0, small)
        return empty, empty, 0
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]).astype(small)
    del g
    sizes = np.diff(np.r_[starts, small(len(idx))])
    size_of = np.repeat(sizes, sizes)
    pos = np.arange(len(idx), dtype=small)
    pos -= np.repeat(starts, sizes)
    skipped = int(sizes[sizes > cap].sum(dtype=np.int64))
    usable = (size_of >= 2) & (size_of <= cap)
    usable &= pos + 1 < size_of
    active = np.flatnonzero(usable).astype(small)
    del usable
    # every round written into the two sides in place (37M pairs in one pass at 5M persons: the
    # rounds, their concatenation and the sides ordered again were three copies of them). A
    # block's rows are in row order (a stable sort), so the earlier row is always i
    kept = sizes[(sizes >= 2) & (sizes <= cap)].astype(np.int64)
    i = np.empty(int((kept * (kept - 1) // 2).sum()), small)
    j = np.empty(len(i), small)
    at, k = 0, 1
    while len(active):
        np.take(idx, active, out=i[at: at + len(active)])
        np.take(idx, active + k, out=j[at: at + len(active)])
        at += len(active)
        k += 1
        active = active[pos[active] + k < size_of[active]]
    return i, j, skipped


def candidate_pairs(table: Mapping[str, np.ndarray], passes: list[BlockingPass]) -> tuple[np.ndarray, np.ndarray, dict]:
    """Distinct candidate pairs over every pass, sorted (int32 sides below 2^31 records); and
    per-pass statistics.

    Each pass's pairs are packed into one int64 (``i * n + j``) and written to a temporary file
    as the pass ends, so the passes that follow do not hold them; the union is read back into
    one array, sorted and made distinct in place: the pairs are held once, beside one pass's."""
    n = len(next(iter(table.values())))
    with tempfile.TemporaryDirectory(prefix="blocking-") as spill:
        codes, stats = _passes_union(table, passes, n, Path(spill))
    codes = sorted_unique(codes, in_place=True)
    stats["distinct_pairs"] = int(len(codes))
    # unpacked a slice at a time into int32 sides: 8 bytes a pair held, 16 at the moment of it
    side = np.int32 if n <= np.iinfo(np.int32).max else np.int64
    i, j = np.empty(len(codes), side), np.empty(len(codes), side)
    for at in range(0, len(codes), _UNPACK_SLICE):
        part = codes[at: at + _UNPACK_SLICE]
        i[at: at + len(part)], j[at: at + len(part)] = np.divmod(part, n)
    del codes
    return i, j, stats


def _passes_union(table: Mapping[str, np.ndarray], passes: list[BlockingPass], n: int,
                  spill: Path) -> tuple[np.ndarray, dict]:
    """Every pass's pairs packed (``i * n + j``), one after another in one array (each pass
    written to ``spill`` as it ends and read back at the end); per-pass statistics."""
    files, stats = [], {}
    for p in passes:
        groups = _blocks(table, p.columns)
        if p.one_per is not None:
            groups = _first_per_value(groups, table[p.one_per])
        i, j, skipped = pairs_within(groups, p.cap)
        del groups
        if p.only_when_missing:
            keep = np.zeros(len(i), bool)
            for f in p.only_when_missing:
                keep |= (table[f][i] < 0) | (table[f][j] < 0)
            i, j = i[keep], j[keep]
            del keep
        codes = i.astype(np.int64)
        del i
        codes *= n
        codes += j
        del j
        files.append(spill / f"pass{len(files)}.npy")
        np.save(files[-1], codes)
        stats[p.name] = {"pairs": int(len(codes)), "records_in_skipped_blocks": skipped}
        del codes
        release_free_memory()
    codes = np.empty(sum(v["pairs"] for v in stats.values()), np.int64)
    at = 0
    for path in files:
        chunk = np.load(path, mmap_mode="r")
        codes[at: at + len(chunk)] = chunk
        at += len(chunk)
        del chunk
        path.unlink()
    return codes, stats


def _blocks(table: Mapping[str, np.ndarray], columns: tuple[str, ...]) -> np.ndarray:
    """The block of each record under a pass's key columns (int64, -1 where a part is missing).
    A key of one column is already a code per record, and its own block number: only a pass's
    set of pairs counts, so it need not be numbered again (the national-id pass's 22M
    signatures at 5M persons were hashed and numbered by a hash table of 0.5 GB for nothing)."""
    if len(columns) == 1:
        groups = np.asarray(table[columns[0]]).astype(np.int64)
        groups[groups < 0] = -1
        return groups
    return combine_keys([table[c] for c in columns])


def _first_per_value(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``groups`` with every record but the first of each (group, value) taken out (-1); records
    without a value (< 0) stay."""
    rows = np.flatnonzero((groups >= 0) & (values >= 0))
    if len(rows) == 0:
        return groups
    first = first_appearances(dense_codes([groups[rows], values[rows]]))
    out = groups.copy()
    out[rows[~first]] = -1
    return out


def release_free_memory() -> None:
    """Hand memory freed inside the heap back to the kernel (glibc's ``malloc_trim``): while
    ``reusing_freed_memory`` keeps freed arrays for reuse, a national run would otherwise hold the
    high-water mark of every phase at once. Arrow's own pool (mimalloc) keeps freed pages too: at
    5M persons 0.85 GB once the animal records were made, a third of the process's memory."""
    pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        import ctypes

        libc.malloc_trim(ctypes.c_size_t(0))

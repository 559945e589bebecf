"""Golden records: one row per person from all of their mentions, by survivorship rules.

For every field the surviving value is, in order: a checked IIN over one that fails its check
digit; for names, the spelling most registries able to write Kazakh letters agree on; the value
most mentions agree on (one registry's typo does not outvote the others); the
population register's (ГБД ФЛ, the authority on identity) when mentions are split evenly; the
smallest value (so ties are deterministic). Each field keeps
the registry it came from. Everything runs on integer codes of the distinct values, so a
national table of mentions costs a few sorts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from family_pipeline.lib.pseudonym import pseudonym_ints
from family_pipeline.resolution.blocking import (
    dictionary_codes,
    first_appearances,
    release_free_memory,
    reusing_freed_memory,
    sorted_unique,
)
from family_pipeline.resolution.normalize import split_full_name

__all__ = ["AUTHORITY", "FIELDS", "PersonIds", "Votes", "cluster_person_ids", "folding_registries", "golden_finish",
           "golden_records", "golden_slices", "golden_table", "golden_votes", "person_ids"]

#: the registry whose values win where it has them
AUTHORITY = "gbd_fl"
#: fields voted at once (each holds its mentions' codes and sort keys while it votes)
VOTE_THREADS = 2
FIELDS = ("iin", "last_name", "first_name", "patronymic", "birth_date", "sex", "region", "address", "death_date")


def folding_registries(catalog) -> frozenset[str]:
    """Registries exported in a single-byte encoding, which folds Kazakh letters to Russian ones."""
    return frozenset(r.code for r in catalog.registries if r.source.encoding == "cp1251")


#: a DataFrame, an Arrow table or anything with ``column(name)`` and ``column_names`` (a
#: ``ParquetColumns``: each column read when its field is voted on)
Mentions = pd.DataFrame | pa.Table


def _arrow(column: pd.Series | pa.ChunkedArray | pa.Array) -> pa.Array | pa.ChunkedArray | None:
    """The column as Arrow (strings or dates), or None where Arrow cannot take it."""
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        arr = column
    else:
        try:
            arr = pa.array(column, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return None
    if pa.types.is_null(arr.type):
        return arr.cast(pa.string())
    return arr


def _column(mentions: Mentions, name: str) -> pd.Series | pa.ChunkedArray:
    return mentions[name] if isinstance(mentions, pd.DataFrame) else mentions.column(name)


def _columns(mentions: Mentions) -> list[str]:
    return list(mentions.columns) if isinstance(mentions, pd.DataFrame) else list(mentions.column_names)


def _ranked_dictionary(column: pd.Series | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(code per row into the distinct values, -1 missing; the distinct values; their order as
    text, where Arrow could sort them)."""
    arr = _arrow(column)
    if arr is None:
        codes, values = pd.factorize(column, use_na_sentinel=True)
        return np.asarray(codes, np.int64), np.asarray(values, dtype=object), None
    codes, dictionary = dictionary_codes(arr)
    # strings sort by code point (UTF-8 bytes), dates by day: as their text would
    order = pc.sort_indices(dictionary).to_numpy().astype(np.int64) if len(dictionary) else np.empty(0, np.int64)
    return codes, np.array(dictionary.to_pylist() + [None], dtype=object)[:-1], order


def _ranked_arrow(column: pd.Series | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array] | None:
    """``_ranked_codes`` with the distinct values kept in Arrow, as ``_as_arrow`` would make
    them (text as large strings, days as date32): no Python object per distinct value. None for
    columns of other types."""
    arr = _arrow(column)
    if arr is None or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
                           or pa.types.is_date32(arr.type)):
        return None
    codes, dictionary = dictionary_codes(arr)
    order = pc.sort_indices(dictionary).to_numpy().astype(np.int64) if len(dictionary) else np.empty(0, np.int64)
    rank = np.empty(len(dictionary), np.int32)
    rank[order] = np.arange(len(dictionary))
    codes = np.where(codes >= 0, rank[np.maximum(codes, 0)] if len(dictionary) else -1, -1)
    values = dictionary.take(pa.array(order))
    return codes, values.cast(pa.large_string()) if pa.types.is_string(values.type) else values


def _rank(codes: np.ndarray, values: np.ndarray, order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Renumber codes so they order like their values (as text); the values in that order."""
    if order is None:
        order = np.argsort(values.astype(str), kind="stable") if len(values) else np.empty(0, np.int64)
    rank = np.empty(len(values), np.int32)  # national tables: codes in half the memory
    rank[order] = np.arange(len(values))
    return np.where(codes >= 0, rank[np.maximum(codes, 0)] if len(values) else -1, -1), values[order]


def _ranked_codes(column: pd.Series | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Codes that order like the values (-1 missing), sorting only the distinct values."""
    return _rank(*_ranked_dictionary(column))


def _first_per_group(group: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Index of the first row of each group after sorting by ``keys`` (most significant first);
    the last key must tell the rows of a group apart. Keys are packed into one integer when they
    fit, else sorted lexicographically."""
    columns = [np.asarray(k, np.int64) for k in (group, *keys)]
    if len(group) == 0:
        return np.empty(0, np.int64)
    packed, bits = np.zeros(len(group), np.int64), 0
    for c in columns:
        lo, hi = int(c.min()), int(c.max())
        width = max((hi - lo).bit_length(), 1)
        bits += width
        if bits > 62:
            break
        packed = (packed << width) | (c - lo)
    if bits <= 62:
        order = np.argsort(packed)
    else:
        order = np.lexsort(tuple(reversed(columns)))
    g = columns[0][order]
    first = np.r_[True, g[1:] != g[:-1]]
    return order[first]


def _member(codes: np.ndarray, values: np.ndarray, wanted) -> np.ndarray:
    """Per row: is its value (by code into ``values``) one of ``wanted``."""
    hit = np.array([v in wanted for v in values] + [False], bool)
    return hit[codes]  # code -1 (missing) reads the trailing False


def _bools(column: pd.Series | pa.ChunkedArray) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray) and pa.types.is_null(column.type):  # no value at all
        return np.zeros(len(column), bool)
    if isinstance(column, pa.ChunkedArray):
        return pc.fill_null(column, False).to_numpy(zero_copy_only=False).astype(bool, copy=False)
    return column.fillna(False).to_numpy(dtype=bool)


def person_ids(mentions: Mentions, cluster: np.ndarray) -> np.ndarray:
    """The person id of every mention (``cluster_person_ids`` of its cluster)."""
    return cluster_person_ids(mentions, cluster)[np.asarray(cluster, np.int64)]


@reusing_freed_memory()
def cluster_person_ids(mentions: Mentions, cluster: np.ndarray) -> np.ndarray:
    """A stable id per cluster (0..k-1): keyed hash of its IIN (checked, as the authority has it),
    else of its first mention. An IIN claimed by several clusters stays with the one with most
    mentions. (``PersonIds``, every mention at once; a national table is read a slice at a time.)"""
    ids = PersonIds(cluster)
    ids.add_anchors(0, _part(mentions, PersonIds.ANCHOR_COLUMNS))
    ids.claim()
    ids.add_first_rows(0, _part(mentions, PersonIds.KEY_COLUMNS))
    return ids.values


def _part(mentions: Mentions, columns: tuple[str, ...]) -> pa.Table:
    return pa.table({c: _arrow(_column(mentions, c)) for c in columns})


def _equals(column: pa.ChunkedArray | pa.Array, wanted: str) -> np.ndarray:
    """Per row: equal to ``wanted`` (text, or text dictionary-encoded: compared on the dictionary)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    out = []
    for chunk in chunks:
        if pa.types.is_dictionary(chunk.type):
            hit = np.append(pc.equal(chunk.dictionary, wanted).fill_null(False).to_numpy(zero_copy_only=False), False)
            out.append(hit[chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False)])
        else:
            out.append(pc.equal(chunk, wanted).fill_null(False).to_numpy(zero_copy_only=False))
    return np.concatenate(out) if out else np.empty(0, bool)


#: a numeric anchor key: the IIN for the authority's mentions, this much more for the others'
_TEXT_AFTER = 10**12
_NONE = 2 * _TEXT_AFTER


class PersonIds:
    """The person id of every cluster (``cluster_person_ids``) from the mentions a slice of rows
    at a time, in row order: ``add_anchors`` of every slice, ``claim``, then ``add_first_rows``
    of every slice. Once a slice's first rows are added, every cluster with a mention in that
    slice or before has its id (a cluster's first mention is its smallest row), so the
    crosswalk can be written slice by slice as the ids are made. At 5M persons the mentions'
    IINs and keys for all 67M rows were several GB; here one slice is read at a time."""

    ANCHOR_COLUMNS = ("iin", "iin_valid", "registry")
    KEY_COLUMNS = ("registry", "record_id", "group")

    def __init__(self, cluster: np.ndarray) -> None:
        self.cluster = np.asarray(cluster)
        self.k = int(self.cluster.max()) + 1 if len(self.cluster) else 0
        self.values = np.zeros(self.k, np.int64)
        self._anchors: list[pa.Table] = []  # anchors kept as text: (cluster, its smallest key) per slice
        self._best = np.full(self.k, _NONE, np.int64)  # anchors kept as numbers
        self._first_row = _first_rows(self.cluster, self.k)
        self._pending: np.ndarray | None = None  # clusters named by their first mention, by first row

    def add_anchors(self, start: int, part: pa.Table) -> None:
        """The slice's candidates for each cluster's anchor IIN: a checked one, the authority's
        first, then the smallest (as text). An IIN of twelve ASCII digits (every checked one a
        registry exports) is kept as a number, the authority's below the others': of numbers of
        one length the smallest is the smallest text, and a cluster's best costs 8 bytes; any
        other is kept as text."""
        iin = part.column("iin")
        has = np.flatnonzero(pc.is_valid(iin).to_numpy(zero_copy_only=False) & _bools(part.column("iin_valid")))
        if not len(has):
            return
        text = iin.take(pa.array(has)).cast(pa.string())
        auth = _equals(part.column("registry"), AUTHORITY)[has]
        digits = pc.and_(pc.equal(pc.binary_length(text), 12), pc.ascii_is_decimal(text)).to_numpy(zero_copy_only=False)
        at = np.flatnonzero(digits)
        number = pc.cast(text.take(pa.array(at)), pa.int64()).to_numpy(zero_copy_only=False)
        np.minimum.at(self._best, self.cluster[start + has[at]], np.where(auth[at], number, number + _TEXT_AFTER))
        odd = np.flatnonzero(~digits)
        if len(odd):
            key = pc.binary_join_element_wise(pa.array(np.where(auth[odd], "0", "1")), text.take(pa.array(odd)), "")
            found = pa.table({"cluster": self.cluster[start + has[odd]], "key": key})
            self._anchors.append(found.group_by("cluster").aggregate([("key", "min")]).rename_columns(["cluster", "key"]))

    def claim(self) -> None:
        """Each anchor IIN goes to the cluster with most mentions (the first such cluster on a
        tie); those clusters take its id, the rest are named by their first mention."""
        had_text = bool(self._anchors)
        numbered = np.flatnonzero(self._best < _NONE)
        best = self._best[numbered]
        text = pc.utf8_lpad(pc.cast(pa.array(best % _TEXT_AFTER), pa.string()), 12, "0")
        self._anchors.append(pa.table({"cluster": numbered, "key": pc.binary_join_element_wise(
            pa.array(np.where(best < _TEXT_AFTER, "0", "1")), text, "")}))
        anchor = pa.concat_tables(self._anchors)
        self._anchors, self._best = [], None
        owner = np.zeros(self.k, bool)
        if anchor.num_rows:
            if had_text:  # a cluster may have both kinds
                anchor = anchor.group_by("cluster").aggregate([("key", "min")]).rename_columns(["cluster", "key"])
            claimed = anchor.column("cluster").to_numpy()
            iin = pc.utf8_slice_codeunits(anchor.column("key"), 1)
            codes = dictionary_codes(iin)[0]
            size = np.bincount(self.cluster, minlength=self.k)
            keep = _first_per_group(codes, -size[claimed], claimed)
            owner[claimed[keep]] = True
            self.values[claimed[keep]] = pseudonym_ints(
                ["iin:" + v for v in iin.take(pa.array(keep)).to_pylist()])
        others = np.flatnonzero(~owner)
        self._pending = others[np.argsort(self._first_row[others], kind="stable")]
        self._pending_rows = self._first_row[self._pending]

    def add_first_rows(self, start: int, part: pa.Table) -> None:
        """Ids of the clusters named by their first mention, for those whose first mention is in
        the slice: a keyed hash of its registry, record id and group."""
        lo, hi = np.searchsorted(self._pending_rows, [start, start + part.num_rows])
        if hi <= lo:
            return
        rows = pa.array(self._pending_rows[lo:hi] - start)
        key = pc.binary_join_element_wise(
            *(part.column(c).take(rows).cast(pa.string()) for c in self.KEY_COLUMNS), "/")
        self.values[self._pending[lo:hi]] = _keyed_hashes(pc.binary_join_element_wise("mention:", key, ""))


def _first_rows(cluster: np.ndarray, k: int) -> np.ndarray:
    """The first row of each cluster 0..k-1 (by a running maximum when clusters are numbered in
    order of first appearance, as the linker numbers them)."""
    rows = np.flatnonzero(first_appearances(cluster)) if len(cluster) else np.empty(0, np.int64)
    if len(rows) == k and np.array_equal(cluster[rows], np.arange(k)):
        return rows
    first_row = np.full(k, len(cluster), np.int64)
    np.minimum.at(first_row, cluster, np.arange(len(cluster)))
    return first_row


#: texts hashed at a time (each a Python string while it is hashed)
HASH_SLICE = 1 << 20


def _keyed_hashes(text: pa.Array) -> np.ndarray:
    """``pseudonym_ints`` of Arrow text, a slice at a time."""
    return np.concatenate([pseudonym_ints(text.slice(s, HASH_SLICE).to_pylist()) for s in range(0, len(text), HASH_SLICE)]
                          or [np.empty(0, np.int64)])


def _name_codes(column: pd.Series | pa.ChunkedArray, full_codes: np.ndarray, parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranked codes of a name part, filled from the mention's full name where it is missing."""
    codes, values, _ = _ranked_dictionary(column)
    part_codes, part_values = pd.factorize(pd.Series(parts, dtype=object), use_na_sentinel=True)
    merged, vocab = pd.factorize(pd.Series(np.concatenate([values, np.asarray(part_values, dtype=object)]), dtype=object))
    merged = np.asarray(merged, np.int32)  # per-mention arrays below in half the memory
    own = merged[: len(values)]
    of_part = np.append(merged[len(values):], np.int32(-1))[np.asarray(part_codes)]  # code -1 reads the -1
    out = np.append(own, np.int32(-1))[codes]
    missing = np.flatnonzero(codes < 0)
    out[missing] = np.append(of_part, np.int32(-1))[full_codes[missing]]  # the part of its full name
    del missing
    return _rank(out, np.asarray(vocab, dtype=object))


def _votes(p: np.ndarray, codes: np.ndarray, width: int, src_code: np.ndarray, spelling: np.ndarray | None,
           valid: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """Per distinct (person, value) of a field: owner, value, mentions, smallest ``src_code`` of its
    mentions, mentions spelled in the full alphabet, whether any
    mention's IIN passed its check digit. One sort of packed keys: (person, value) above, the
    mention's registry and flags below, so each group's first key holds its smallest registry."""
    present = codes >= 0
    flag_bits = max(int(src_code.max()).bit_length(), 1) + 2
    n_groups = int(p.max()) + 1 if len(p) else 0
    if (n_groups * width).bit_length() + flag_bits > 62:  # too wide to pack: a hash table instead
        rows = np.flatnonzero(present)
        inverse, uniq = pd.factorize(p[rows].astype(np.int64) * width + codes[rows])
        inverse = np.asarray(inverse, np.int64)
        count = np.bincount(inverse, minlength=len(uniq))
        source = np.full(len(uniq), np.iinfo(np.int64).max)
        np.minimum.at(source, inverse, src_code[rows])
        spelled = np.bincount(inverse, weights=spelling[rows], minlength=len(uniq)).astype(np.int64) \
            if spelling is not None else np.zeros(len(uniq), np.int64)
        checked = np.bincount(inverse, weights=valid[rows], minlength=len(uniq)) > 0 if valid is not None \
            else np.zeros(len(uniq), bool)
        uniq = np.asarray(uniq, np.int64)
    else:
        # built in place: one national array of keys and one temporary at a time
        key = p[present].astype(np.int64)
        key *= width
        key += codes[present]
        key <<= flag_bits
        part = src_code[present].astype(np.int64)
        part <<= 2
        key |= part
        if spelling is not None:
            part = spelling[present].astype(np.int64)
            part <<= 1
            key |= part
        del part
        if valid is not None:
            key |= valid[present]
        key.sort()
        group = key >> flag_bits
        new_group = np.empty(len(key), bool)
        new_group[:1] = True
        np.not_equal(group[1:], group[:-1], out=new_group[1:])
        starts = np.flatnonzero(new_group)
        del new_group
        uniq = group[starts]
        del group
        count = np.diff(np.r_[starts, len(key)])
        source = key[starts] >> 2 & ((1 << (flag_bits - 2)) - 1)
        spelled = np.add.reduceat((key >> 1) & 1, starts) if spelling is not None and len(key) else np.zeros(len(uniq), np.int64)
        checked = np.bitwise_or.reduceat(key & 1, starts) > 0 if valid is not None and len(key) else np.zeros(len(uniq), bool)
    return uniq // width, uniq % width, count, source, spelled, checked


def _as_arrow(values: np.ndarray) -> pa.Array:
    """Distinct values of a field (Python objects) as Arrow: text as large strings (the type the
    tables have always had), dates as date32."""
    arr = pa.array(list(values), from_pandas=True) if len(values) else pa.array([], pa.large_string())
    if pa.types.is_string(arr.type) or pa.types.is_null(arr.type):
        arr = arr.cast(pa.large_string())
    return arr


def _pick(values: pa.Array, index: np.ndarray) -> pa.Array:
    """values[index] per person, null where the index is -1."""
    return values.take(pa.array(np.maximum(index, 0), mask=index < 0)) if len(values) else \
        pa.nulls(len(index), values.type)


@reusing_freed_memory()
def golden_records(mentions: Mentions, person_id: np.ndarray, folding_registries: frozenset[str] = frozenset()) -> pd.DataFrame:
    """``folding_registries``: registries that cannot write Kazakh letters (single-byte exports);
    their votes on how a name is spelled count only where no other registry spells it."""
    return golden_table(mentions, person_id, folding_registries).to_pandas()


@reusing_freed_memory()
def golden_table(mentions: Mentions, person_id: np.ndarray, folding_registries: frozenset[str] = frozenset()) -> pa.Table:
    """``golden_records`` as an Arrow table: the values are taken from each field's distinct
    values by index, no Python object per person."""
    p, pid_values = pd.factorize(np.asarray(person_id, np.int64))
    by_value = np.argsort(pid_values, kind="stable")
    rank = np.empty(len(pid_values), np.int32)
    rank[by_value] = np.arange(len(pid_values))
    p, pid_values = rank[p], np.asarray(pid_values)[by_value]
    return golden_finish(golden_votes(mentions, p, len(pid_values), folding_registries), pid_values)


@dataclass
class Votes:
    """The surviving value of every field for each group of mentions (a linked cluster), before
    the groups have their person ids: ``golden_finish`` numbers them."""
    #: per field: its distinct values, the winning value's index per group (-1 none), the index
    #: of the registry it came from per group (into ``source_names``)
    chosen: dict[str, tuple[pa.Array, np.ndarray, np.ndarray]]
    source_names: pa.Array
    #: mentions and distinct registries per group
    mentions: np.ndarray
    registries: np.ndarray


#: mentions voted at once: above this, the mentions are first written out by ranges of groups
#: (persons), each range holding about this many, and each range is voted on its own. At 5M
#: persons (67M mentions) ranges of 16M peaked 4 GB above the step's other arrays, ranges of 8M
#: 2.2 GB, in the same time
VOTE_PART = 8_000_000
#: mentions read at a time while they are written out by ranges of groups
VOTE_SLICE = 1 << 20
#: the ranges' files: Arrow's own format, compressed fast (written once, read once)
_SPILL = pa.ipc.IpcWriteOptions(compression="lz4")


@reusing_freed_memory()
def golden_votes(mentions: Mentions, group: np.ndarray, n_groups: int,
                 folding_registries: frozenset[str] = frozenset(), part_rows: int | None = None) -> Votes:
    """Every field voted among the mentions of each group (``group``: 0..n_groups-1 per mention).
    The votes of a group do not depend on how groups are numbered, so they can be taken on the
    linker's clusters while the person ids are still being made.

    Up to ``part_rows`` mentions (``VOTE_PART``) are voted at once. A larger table that is read
    from a file (a ``ParquetColumns``) is first written out, a slice of mentions at a time, into
    one Arrow file per range of groups holding about ``part_rows`` mentions (in a temporary
    folder beside the mentions file, removed when the vote ends: 3.5 GB at 5M persons, three and
    a half times the mentions file), and each range is voted on its own (a group's votes need
    only its own mentions): the vote's memory is one range's, whatever the size of the country
    (at 5M persons, 67M mentions voted at once peaked at 9.3 GB).
    """
    group = np.asarray(group)
    part_rows = part_rows or VOTE_PART
    if len(mentions) <= part_rows or not hasattr(mentions, "slices"):
        return _votes_in_memory(mentions, group, n_groups, folding_registries)
    # ranges of groups with about part_rows mentions each (a group is never split)
    cumulative = np.cumsum(np.bincount(group, minlength=n_groups))
    parts = -(-len(group) // part_rows)
    edges = np.unique(np.r_[0, np.searchsorted(cumulative, np.arange(1, parts) * (len(group) / parts)), n_groups])
    columns = [c for c in _columns(mentions) if c in (*FIELDS, "registry", "iin_valid", "full_name")]
    with tempfile.TemporaryDirectory(prefix="golden-votes-", dir=Path(mentions.path).parent) as tmp:
        paths = [Path(tmp) / f"part{b:04d}.arrow" for b in range(len(edges) - 1)]
        writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}
        try:
            for start, part in mentions.slices(columns, VOTE_SLICE):
                g = group[start: start + part.num_rows]
                which = np.searchsorted(edges, g, side="right") - 1
                order = np.argsort(which, kind="stable")  # file order kept within each range
                bounds = np.searchsorted(which[order], np.arange(len(edges)))
                part = pa.table({c: _texts(part.column(c)) for c in columns}).append_column(
                    "_group", pa.array(g, pa.int64()))
                for b in range(len(paths)):
                    rows = order[bounds[b]:bounds[b + 1]]
                    if len(rows):
                        if b not in writers:
                            writers[b] = pa.ipc.new_file(paths[b], part.schema, options=_SPILL)
                        writers[b].write_table(part.take(pa.array(rows)))
                del part
        finally:
            for writer in writers.values():
                writer.close()
        votes = []
        for b, path in enumerate(paths):
            lo, hi = int(edges[b]), int(edges[b + 1])
            with pa.ipc.open_file(path) as reader:
                rows = reader.read_all()
            local = rows.column("_group").to_numpy() - lo
            votes.append(_winners_only(_votes_in_memory(rows, local, hi - lo, folding_registries)))
            del rows, local
            release_free_memory()  # the range's temporaries, before the next range's peak
    return _joined(votes)


def _winners_only(votes: Votes) -> Votes:
    """A range's votes keeping only the values some group won, as int32 codes: what each range
    holds until the ranges are joined. A range's distinct values are mostly values no group won
    (every misspelling, every address a person left): at 5M persons the ranges held them all, and
    the vote's peak rose by a range's worth with every range voted."""
    chosen = {}
    for f, (values, won, won_source) in votes.chosen.items():
        if not pa.types.is_null(values.type):
            kept = np.flatnonzero(np.bincount(won[won >= 0], minlength=len(values)))  # ascending
            recode = np.full(len(values) + 1, -1, np.int32)  # the last slot reads -1 (none)
            recode[kept] = np.arange(len(kept), dtype=np.int32)
            values, won = values.take(pa.array(kept)), recode[won]
        chosen[f] = (values, won.astype(np.int32, copy=False), won_source.astype(np.int32, copy=False))
    return Votes(chosen, votes.source_names, votes.mentions, votes.registries)


def _texts(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column with dictionary-encoded text decoded (each slice has its own dictionary)."""
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def _joined(parts: list[Votes]) -> Votes:
    """The votes of consecutive ranges of groups as one: each field's distinct values made one
    set (the same value, one code), the registries named by one list."""
    names = sorted({n for v in parts for n in v.source_names.to_pylist()[:-1]})
    source_names = _as_arrow(np.array(names + [AUTHORITY], dtype=object))
    # each range's registry positions (its authority last, -1 none) in the joined list
    sources = [np.array([names.index(n) for n in v.source_names.to_pylist()[:-1]] + [len(names), -1], np.int64)
               for v in parts]
    chosen = {}
    for f in parts[0].chosen:
        present = [v.chosen[f][0] for v in parts if not pa.types.is_null(v.chosen[f][0].type)]
        codes, values = dictionary_codes(pa.chunked_array(present)) if present else (None, pa.array([], pa.null()))
        won, at = [], 0
        for v in parts:
            distinct, w = v.chosen[f][0], v.chosen[f][1]
            if not pa.types.is_null(distinct.type):
                w = np.append(codes[at: at + len(distinct)], -1)[w]  # -1 (none) reads the trailing -1
                at += len(distinct)
            won.append(w)
        chosen[f] = (values, np.concatenate(won).astype(np.int64),
                     np.concatenate([mapping[v.chosen[f][2]] for v, mapping in zip(parts, sources)]))
    return Votes(chosen, source_names, np.concatenate([v.mentions for v in parts]),
                 np.concatenate([v.registries for v in parts]))


@reusing_freed_memory()
def _votes_in_memory(mentions: Mentions, group: np.ndarray, n_groups: int,
                 folding_registries: frozenset[str] = frozenset()) -> Votes:
    """Every field voted among the mentions of each group (``group``: 0..n_groups-1 per mention).
    The votes of a group do not depend on how groups are numbered, so they can be taken on the
    linker's clusters while the person ids are still being made."""
    p, n_persons = group, n_groups
    columns = _columns(mentions)
    reg_codes, reg_values = _ranked_codes(_column(mentions, "registry"))
    auth = _member(reg_codes, reg_values, {AUTHORITY})
    full_alphabet = ~_member(reg_codes, reg_values, folding_registries)
    iin_valid = _bools(_column(mentions, "iin_valid")) if "iin_valid" in columns else np.zeros(len(reg_codes), bool)
    # a mention's registry as a vote's source: the authority first, then registries in order
    src_code = np.where(auth, 0, reg_codes + 2)
    source_names = _as_arrow(np.append(np.asarray(reg_values, dtype=object), AUTHORITY))  # the authority last
    # name parts missing in a mention come from its full name, split once per distinct full name
    full_codes, full_uniques, _ = _ranked_dictionary(_column(mentions, "full_name"))
    parts = split_full_name(pd.Series(np.asarray(full_uniques, dtype=object), dtype=object))

    def vote(f: str) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        """The field's distinct values, the winning value per person and the registry it came from."""
        as_arrow = None  # the distinct values already in Arrow
        if f in ("last_name", "first_name", "patronymic"):
            codes, values = _name_codes(_column(mentions, f), full_codes, parts[f].to_numpy(dtype=object))
        else:
            ranked = _ranked_arrow(_column(mentions, f))
            if ranked is None:
                codes, values = _ranked_codes(_column(mentions, f))
            else:
                codes, as_arrow = ranked
                values = range(len(as_arrow))  # only its length is used below
        if not (codes >= 0).any():
            return pa.array([], pa.null()), np.full(n_persons, -1, np.int64), np.full(n_persons, -1, np.int64)
        owner, value, count, source, spelled, checked = _votes(
            p, codes, len(values) + 1, src_code, full_alphabet if f in ("last_name", "first_name", "patronymic") else None,
            iin_valid if f == "iin" else None)
        del codes
        has_auth = source == 0
        source = source - 2  # back to registry codes; below zero reads as the authority
        best = _first_per_group(owner, ~checked, -spelled, -count, ~has_auth, value)
        won = np.full(n_persons, -1, np.int64)
        won[owner[best]] = value[best]
        src = source[best]
        won_source = np.full(n_persons, -1, np.int64)
        won_source[owner[best]] = np.where(src < 0, len(reg_values), np.clip(src, 0, len(reg_values) - 1))
        return (as_arrow if as_arrow is not None else _as_arrow(np.asarray(values, dtype=object)), won, won_source)

    # the fields vote independently, in Arrow and numpy sorts that leave the GIL: two at a time
    fields = [f for f in FIELDS if f in columns]
    with ThreadPoolExecutor(max_workers=VOTE_THREADS, thread_name_prefix="golden-vote") as pool:
        chosen: dict[str, tuple[pa.Array, np.ndarray, np.ndarray]] = dict(zip(fields, pool.map(vote, fields)))
    mentions_per_person = np.bincount(p, minlength=n_persons)
    pairs = sorted_unique(p.astype(np.int64) * (len(reg_values) + 1) + reg_codes, in_place=True)
    registries = np.bincount(pairs // (len(reg_values) + 1), minlength=n_persons)
    return Votes(chosen, source_names, mentions_per_person, registries)


def golden_finish(votes: Votes, person_id: np.ndarray) -> pa.Table:
    """The golden records of the groups ``votes`` were taken on, one per person in order of
    ``person_id`` (one distinct id per group): an IIN voted for several persons stays with the
    one with most mentions, the rest are flagged."""
    slices = list(golden_slices(votes, person_id))
    return pa.concat_tables(slices) if len(slices) > 1 else slices[0]


#: golden records made at a time by ``golden_slices`` (a multiple of the lake's row group)
GOLDEN_SLICE = 1 << 20


def golden_slices(votes: Votes, person_id: np.ndarray, rows: int = GOLDEN_SLICE) -> Iterator[pa.Table]:
    """``golden_finish`` ``rows`` persons at a time, each slice made when the previous one is
    taken: a national table is written as it is made (at 5M persons the whole table was 1.7 GB,
    a third of it the registries' names repeated in the source columns)."""
    person_id = np.asarray(person_id, np.int64)
    order = np.argsort(person_id, kind="stable")
    n_persons = len(order)
    mentions_per_person = votes.mentions[order]
    winner = {f: won[order] for f, (values, won, _) in votes.chosen.items() if not pa.types.is_null(values.type)}
    # an IIN identifies one person: where records copied it onto someone else (a relative), the
    # person with the most mentions keeps it and the others are flagged for review
    disputed_mask = np.zeros(n_persons, bool)
    if "iin" in winner:
        holders = np.flatnonzero(winner["iin"] >= 0)
        kept = np.zeros(len(holders), bool)
        kept[_first_per_group(winner["iin"][holders], -mentions_per_person[holders], holders)] = True
        disputed_mask[holders[~kept]] = True
        del holders, kept
    del winner
    for lo in range(0, max(n_persons, 1), rows):
        at = order[lo: lo + rows]
        disputed = disputed_mask[lo: lo + len(at)]
        out: dict[str, pa.Array] = {"person_id": pa.array(person_id[at])}
        for f, (values, won, won_source) in votes.chosen.items():
            if pa.types.is_null(values.type):  # no mention has the field
                out[f] = out[f"{f}_source"] = pa.nulls(len(at))
                continue
            won, won_source = won[at], won_source[at]
            if f == "iin":
                won[disputed] = -1
                won_source[disputed] = -1
            out[f] = _pick(values, won)
            out[f"{f}_source"] = _pick(votes.source_names, won_source)
        out["mentions"] = pa.array(mentions_per_person[lo: lo + len(at)].astype(np.int64))
        out["registries"] = pa.array(votes.registries[at].astype(np.int64))
        out["alive"] = pc.is_null(out["death_date"]) if "death_date" in out else pa.array(np.ones(len(at), bool))
        out["iin_disputed"] = pa.array(disputed)
        yield pa.table(out)

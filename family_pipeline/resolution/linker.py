"""The linker: person records in, one cluster id per record out. No Dagster here.

    from family_pipeline.resolution import link
    result = link(frame, {"national_id": "iin", "last_name": "surname", "first_name": "name",
                          "birth_date": "dob"}, national_id="iin")
    frame["person"] = result.cluster

Every mapped column is optional (a full name can stand in for its parts); identifiers may be in
any format (``national_id="iin"`` adds Kazakhstan's check digit and the sex coded in the IIN).
Records are first collapsed into distinct signatures (the same IIN, names, birth date, sex and
region written alike), so a person named identically in forty registries costs one comparison.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from family_pipeline.resolution.blocking import (
    BlockingPass,
    candidate_pairs,
    dictionary_codes,
    release_free_memory,
    reusing_freed_memory,
)
from family_pipeline.resolution.clustering import cluster_links
from family_pipeline.resolution.comparisons import FIELDS, LEVELS, NO_DATE, compare
from family_pipeline.resolution.encoding import CHUNK_ROWS, COLUMNS, Encoded, encode
from family_pipeline.resolution.model import FellegiSunter, pattern_codes

__all__ = ["COLUMNS", "DEFAULT_PASSES", "LinkResult", "link"]

DEFAULT_PASSES = [
    BlockingPass("national_id", ("national_id",), cap=200),
    BlockingPass("birth_date+last_name", ("birth_date", "last_name"), one_per="national_id"),
    BlockingPass("birth_date+first_name", ("birth_date", "first_name"), one_per="national_id"),
    BlockingPass("last_name+first_name+birth_year", ("last_name", "first_name", "birth_year"),
                 only_when_missing=("national_id",), one_per="national_id"),
    BlockingPass("name_pair+birth_date", ("name_lo", "name_hi", "birth_date"), one_per="national_id"),
    BlockingPass("last_name+first_name+patronymic", ("last_name", "first_name", "patronymic"),
                 only_when_missing=("birth_date",), one_per="national_id"),
    BlockingPass("id_prefix+first_name", ("id_prefix", "first_name"), only_when_missing=("birth_date",),
                 one_per="national_id"),
]
#: pairs scored at a time
SCORE_CHUNK = 4_000_000


@dataclass
class LinkResult:
    #: cluster id per input row (0..k-1, numbered in order of first appearance; int32 below 2^31 clusters)
    cluster: np.ndarray
    #: per signature: how sure its link into its cluster is (1.0 for a cluster of one signature);
    #: ``probability`` gives it per input row
    signature_probability: np.ndarray
    #: signature (distinct normalised record) per input row
    signature: np.ndarray
    #: scored candidate pairs of signatures (``first_row`` gives a representative input row of
    #: each side: two int32 columns of the pairs' length not held beside them)
    pairs: pd.DataFrame
    model: FellegiSunter
    stats: dict = field(default_factory=dict)
    #: first input row of each signature
    first_row: np.ndarray | None = None

    @property
    def probability(self) -> np.ndarray:
        """Per input row, how sure its link into its cluster is: made when asked (8 bytes a row,
        2.2 GB at 20M persons), so a caller that needs it a slice at a time indexes
        ``signature_probability`` by that slice's ``signature`` instead."""
        return self.signature_probability[self.signature]


#: a DataFrame, an Arrow table, or anything with ``column_names``, a length and ``slices``
#: (a ``ParquetColumns``: read a chunk of rows at a time)
Records = pd.DataFrame | pa.Table


class _BlockingKeys(Mapping):
    """Blocking keys per signature (int32 codes, negative where missing), each made when a pass
    asks for it and let go when the pass is done: held together, the five made for the passes
    and their temporaries were kept through every pass (265 MB at 1M persons, more than the
    national-id pass's own pairs at their peak). Dates and years count from the earliest one
    present (a date before 1970 is a negative day number, and as a key it would read as missing:
    everyone born before 1970 left out of the passes on birth dates)."""

    KEYS = ("national_id", "birth_date", "last_name", "first_name", "patronymic", "birth_year",
            "name_lo", "name_hi", "id_prefix")

    def __init__(self, sig: dict, vocab: dict) -> None:
        self._sig = sig
        self._ids = vocab["national_id"]
        days = sig["birth_date"]
        self._has = days != NO_DATE
        self._first_day = int(days[self._has].min()) if self._has.any() else 0
        self._first_year = int(days[self._has].min().astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64)) \
            if self._has.any() else 0

    def __len__(self) -> int:
        return len(self.KEYS)

    def __iter__(self):
        return iter(self.KEYS)

    def __getitem__(self, key: str) -> np.ndarray:
        sig, has = self._sig, self._has
        if key in ("national_id", "last_name", "first_name", "patronymic"):
            out = sig[key]
        elif key == "birth_date":
            out = np.where(has, sig["birth_date"] - self._first_day, -1)
        elif key == "birth_year":
            years = sig["birth_date"].astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64)
            out = np.where(has, years - self._first_year, -1)
        elif key in ("name_lo", "name_hi"):
            last, first = sig["last_name"], sig["first_name"]
            lo = np.minimum(last, first)
            out = np.where(lo >= 0, lo if key == "name_lo" else np.maximum(last, first), -1)
        elif key == "id_prefix":
            out = self._id_prefix()
        else:
            raise KeyError(key)
        return out.astype(np.int32, copy=False)  # codes and day counts fit

    def _id_prefix(self) -> np.ndarray:
        """The first six characters of each id (its birth date, for an IIN), cut in Arrow: no
        Python string per id (28M at 20M persons)."""
        national_id = self._sig["national_id"]
        ids = self._ids if isinstance(self._ids, pa.Array) else pa.array(self._ids, pa.string())
        if not len(ids):
            return np.full(len(national_id), -1, np.int32)
        prefix_codes = dictionary_codes(pc.utf8_slice_codeunits(ids, 0, 6))[0]
        return np.where(national_id >= 0, prefix_codes[np.maximum(national_id, 0)], -1)


def _agreeing_pairs(sig: dict) -> dict[str, tuple[float, float]]:
    """Per field: (signature pairs agreeing exactly, pairs where both sides have a value)."""
    out = {}
    for f in ("national_id", "last_name", "first_name", "patronymic", "birth_date"):
        v = sig[f]
        v = v[(v >= 0) if f != "birth_date" else (v != NO_DATE)]
        if len(v) < 2:
            continue
        _, c = np.unique(v, return_counts=True)
        c = c.astype(float)
        out[f] = (float((c * (c - 1) / 2).sum()), len(v) * (len(v) - 1) / 2)
    return out


def _exact_u(agreeing: dict[str, tuple[float, float]], matches: float = 0.0, m_exact: dict[str, float] | None = None,
             counted: dict[str, float] | None = None) -> dict[str, float]:
    """P(two signatures agree exactly | different persons). Agreeing pairs of the same person are
    taken out (``matches`` expected matching pairs, ``m_exact`` their agreement rate), unless the
    agreements of different persons were ``counted`` for the field; at least one coincidence in
    the whole space is assumed, so no weight is infinite."""
    out = {}
    for f, (agree, total) in agreeing.items():
        if counted and f in counted:
            coincidences = counted[f]
        else:
            coincidences = agree - matches * (m_exact or {}).get(f, 0.0)
        out[f] = float(max(coincidences, 1.0, agree * 1e-4) / total)
    return out


def _id_coincidences(levels: dict[str, np.ndarray]) -> dict[str, float]:
    """Candidate pairs sharing a national id that are two persons for certain — their birth dates
    and first names both differ: a mistyped or borrowed id. Every pair sharing an id is a
    candidate, so this counts the id's coincidences directly; they grow with the country (a share
    of its records), while the pairs they are drawn from grow with its square, so the id's
    weight keeps pace with the falling prior at any size (the difference of the agreeing pairs
    and the expected matches is too small against either to estimate it)."""
    clash = (levels["national_id"] == 3) & (levels["birth_date"] == 0) & (levels["first_name"] == 0)
    return {"national_id": float(np.count_nonzero(clash))}


def _frequency_tables(sig: dict, fields=("last_name", "first_name")) -> dict[str, np.ndarray]:
    """Per field: the share of signatures holding each value (by code; the last slot for none)."""
    tables = {}
    for f in fields:
        v = sig[f]
        present = v >= 0
        freq = np.zeros(v.max() + 2 if len(v) else 1)
        if present.any():
            freq[: v[present].max() + 1] = np.bincount(v[present]) / present.sum()
        tables[f] = freq
    return tables


def _scores(model: FellegiSunter, sig: dict, levels: dict[str, np.ndarray], i: np.ndarray,
            chunk: int = SCORE_CHUNK) -> np.ndarray:
    """Match probability of every pair, ``chunk`` pairs at a time: the term frequencies and the
    weights' temporaries exist for one chunk, never for all pairs (200M at 5M persons)."""
    p = np.empty(len(i))
    tables = _frequency_tables(sig)
    for s in range(0, len(i), chunk):
        e = min(s + chunk, len(i))
        tf = {f: freq[np.maximum(sig[f][i[s:e]], 0)] for f, freq in tables.items()}
        p[s:e] = model.probability({f: lv[s:e] for f, lv in levels.items()}, tf)
    return p


def _links(i: np.ndarray, j: np.ndarray, p: np.ndarray, levels: dict[str, np.ndarray], threshold: float,
           compatible: _Compatible, chunk: int = SCORE_CHUNK) -> np.ndarray:
    """Which pairs are links: at or above the ``threshold``, with nothing in their records that
    contradicts one person. Judged ``chunk`` pairs at a time: taken over all pairs at once, the
    positions, sides and levels of the strong pairs and their checks' temporaries were the
    linkage's peak at 5M persons (1.2 GB above the scored pairs)."""
    link = np.zeros(len(i), bool)
    for s in range(0, len(i), chunk):
        e = min(s + chunk, len(i))
        at = np.flatnonzero(p[s:e] >= threshold)
        lv = {f: levels[f][s:e][at] for f in ("national_id", "first_name", "birth_date")}
        link[s + at[compatible.agrees(i[s:e][at], j[s:e][at], lv)]] = True
    return link


def _anchors(levels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Near-certain matches to learn each field's m from, using only the other fields: the same
    national id for the personal fields; the same names and birth date for the national id."""
    same_id = levels["national_id"] == 3
    same_person = (levels["last_name"] == 3) & (levels["first_name"] == 3) & (levels["birth_date"] == 3) & (levels["patronymic"] != 0)
    return {"national_id": same_person, **{f: same_id for f in FIELDS if f != "national_id"}}


def _random_pairs(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, size)
    b = rng.integers(0, n, size)
    keep = a != b
    return a[keep], b[keep]


class _Compatible:
    """``compatible(a, b)``: nothing in the signatures of each pair contradicts one person (no
    conflicting birth date or first name, no two checked national ids that differ unless the
    birth date and first name vouch for a copied or mistyped one)."""

    FIELDS = ("national_id", "last_name", "first_name", "birth_date")

    def __init__(self, sig: dict, vocab: dict) -> None:
        self._sig, self._vocab = sig, vocab

    def agrees(self, a: np.ndarray, b: np.ndarray, lv: dict[str, np.ndarray]) -> np.ndarray:
        """Nothing in the pair's levels ``lv`` contradicts one person."""
        ids, checked = self._sig["national_id"], self._vocab["national_id_checked"]
        ida, idb = ids[a], ids[b]
        both_checked = (ida >= 0) & (idb >= 0) & checked[np.maximum(ida, 0)] & checked[np.maximum(idb, 0)]
        vouched = (lv["birth_date"] == 3) & (lv["first_name"] >= 2)  # a copied or mistyped id
        return ~((lv["birth_date"] == 0) | (lv["first_name"] == 0)
                 | ((lv["national_id"] == 0) & both_checked & ~vouched))

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.empty(len(a), bool)
        for s in range(0, len(a), SCORE_CHUNK):  # the levels and their temporaries of a chunk
            e = min(s + SCORE_CHUNK, len(a))
            out[s:e] = self.agrees(a[s:e], b[s:e], compare(self._sig, self._vocab, a[s:e], b[s:e], fields=self.FIELDS))
        return out


@contextmanager
def _set_aside(arrays: dict[str, np.ndarray], where: str | None) -> Iterator[Callable[[], dict[str, np.ndarray]]]:
    """The ``arrays`` written to a temporary directory under ``where`` (the system's by default)
    and let go from the dict; yields a function that reads them back. The caller drops its own
    references, so nothing holds them in memory meanwhile."""
    with tempfile.TemporaryDirectory(prefix="linkage-", dir=where) as spill:
        paths = {}
        for name in list(arrays):
            paths[name] = f"{spill}/{name}.npy"
            np.save(paths[name], arrays.pop(name), allow_pickle=False)
        yield lambda: {name: np.load(path) for name, path in paths.items()}


class _Clock:
    """Per stage of a run: wall seconds, CPU seconds (every thread) and the process's peak memory
    so far (``LinkResult.stats["profile"]``); the figures vary from run to run, the links don't."""

    def __init__(self, progress: Callable[[str, dict[str, float]], None] | None = None) -> None:
        self.laps: dict[str, dict[str, float]] = {}
        self._progress = progress
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def lap(self, name: str) -> None:
        release_free_memory()  # each phase's temporaries go back before the next phase peaks
        wall, cpu = time.perf_counter(), time.process_time()
        self.laps[name] = {"seconds": round(wall - self._wall, 2), "cpu_seconds": round(cpu - self._cpu, 2),
                           "peak_rss_mb": _peak_rss_mb()}
        self._wall, self._cpu = wall, cpu
        if self._progress is not None:
            self._progress(name, self.laps[name])


def _peak_rss_mb() -> float:
    try:
        import resource
    except ImportError:  # not on this platform
        return float("nan")
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def link(records: Records, columns: Mapping[str, str], *, national_id: str = "any", threshold: float = 0.5,
         model: FellegiSunter | None = None, passes: list[BlockingPass] | None = None, seed: int = 0,
         review_band: tuple[float, float] = (0.05, 0.95), u_sample: int = 1_000_000,
         chunk_rows: int = CHUNK_ROWS, progress: Callable[[str, dict[str, float]], None] | None = None,
         spill_dir: str | None = None) -> LinkResult:
    """Link person records; see the module docstring. ``model`` reuses fitted parameters;
    records are encoded ``chunk_rows`` at a time (the result is the same for any size);
    ``progress(phase, figures)`` is called as each phase ends, with its ``stats["profile"]`` entry
    (a long national run shows where it is, and how far a run that was killed got); the candidate
    pairs wait in a temporary directory under ``spill_dir`` (the system's by default) while the
    clusters are made."""
    if national_id not in ("any", "iin"):
        raise ValueError("national_id must be 'any' or 'iin'")
    clock = _Clock(progress)
    # encoded with glibc's own handling of freed memory: each chunk's temporaries kept for reuse
    # raised the encoding's peak at 5M persons by 0.45 GB, for no time saved
    encoded = encode(records, columns, national_id, chunk_rows)
    clock.lap("prepare")
    return _link_encoded(encoded, len(records), clock, threshold=threshold, model=model, passes=passes, seed=seed,
                         review_band=review_band, u_sample=u_sample, spill_dir=spill_dir)


@reusing_freed_memory()
def _link_encoded(encoded: Encoded, n_records: int, clock: _Clock, *, threshold: float, model: FellegiSunter | None,
                  passes: list[BlockingPass] | None, seed: int, review_band: tuple[float, float],
                  u_sample: int, spill_dir: str | None) -> LinkResult:
    """``link`` from the encoded records on: blocking, comparison, the model, scores, clusters.
    The ``encoded`` records are handed over: their signatures' table goes before the output is made."""
    row_sig, sig, support, first_row, vocab = encoded.hand_over()
    n_sig = len(support)
    stats: dict = {"records": int(n_records), "signatures": int(n_sig)}
    i, j, block_stats = candidate_pairs(_BlockingKeys(sig, vocab), passes or DEFAULT_PASSES)
    stats["blocking"] = block_stats
    stats["candidate_pairs"] = int(len(i))
    clock.lap("blocking")
    levels = compare(sig, vocab, i, j)
    clock.lap("compare")
    if model is None:
        model = FellegiSunter(levels=dict(LEVELS), tf_fields=("last_name", "first_name"))
        ra, rb = _random_pairs(n_sig, min(u_sample, max(n_sig * 4, 1000)), seed)
        random_levels = compare(sig, vocab, ra, rb)
        agreeing = _agreeing_pairs(sig)
        counted = _id_coincidences(levels)
        model.estimate_u(random_levels, _exact_u(agreeing, counted=counted))
        model.initial_m()
        model.estimate_m_from_anchors(levels, _anchors(levels))
        # EM runs over the distinct comparison patterns; they are computed once for every pass
        em_levels = {**levels, "_patterns": pattern_codes(levels, tuple(model.levels))}
        model.estimate_prior(em_levels)
        # exact agreement of different persons: the agreeing pairs less those of the same person
        matches = model.prior * len(i)
        model.estimate_u(random_levels, _exact_u(agreeing, matches, {f: model.m[f][-1] for f in agreeing}, counted))
        model.estimate_prior(em_levels)
        # the prior over every pair of signatures, not over the blocked candidates: u comes from
        # random pairs, so the prior must describe random pairs too
        all_pairs = n_sig * (n_sig - 1) / 2
        model.prior = float(min(max(model.prior * len(i) / max(all_pairs, 1), 1e-12), 0.5))
        del em_levels, random_levels  # the patterns' index per pair: 4 bytes a candidate, not kept to the end
    clock.lap("estimate")
    p = _scores(model, sig, levels, i)
    clock.lap("score")

    compatible = _Compatible(sig, vocab)

    # a pair whose own records contradict each other (a relative's id, two birth dates) is no
    # link however strong: left in, it would break its component and fragment the rebuild
    link = _links(i, j, p, levels, threshold, compatible)
    ki, kj, kp = i[link], j[link], p[link]
    del link
    # the candidate pairs and their levels wait on disk while the clusters are made from the links
    with _set_aside({"i": i, "j": j, "p": p, **{f"level_{f}": levels[f] for f in FIELDS}}, spill_dir) as read_back:
        del i, j, p, levels
        release_free_memory()
        labels, cstats = cluster_links(n_sig, ki, kj, kp, support, compatible)
        # what the clustering needed goes before the pairs come back
        del ki, kj, kp, compatible, sig, vocab, support
        release_free_memory()
        back = read_back()
    i, j, p = back.pop("i"), back.pop("j"), back.pop("p")
    levels = {f: back.pop(f"level_{f}") for f in FIELDS}
    del back
    stats["clustering"] = cstats
    clock.lap("cluster")
    # the strongest link that holds each signature in its cluster
    same = labels[i] == labels[j]
    best = np.zeros(n_sig)
    np.maximum.at(best, i[same], p[same])
    np.maximum.at(best, j[same], p[same])
    sizes = np.bincount(labels)
    best[sizes[labels] == 1] = 1.0
    # clusters numbered by their first input row: the earliest first row of their signatures
    first_of_cluster = np.full(labels.max() + 1 if n_sig else 0, n_records, np.int64)
    np.minimum.at(first_of_cluster, labels, first_row)
    # a cluster per input row (270M at 20M persons) in int32 while the clusters' count fits
    rank = np.empty(len(first_of_cluster), np.int32 if len(first_of_cluster) <= np.iinfo(np.int32).max else np.int64)
    rank[np.argsort(first_of_cluster, kind="stable")] = np.arange(len(first_of_cluster))
    row_cluster = rank[labels][row_sig]
    stats["clusters"] = int(len(first_of_cluster))
    pairs = pd.DataFrame({"signature_a": i, "signature_b": j, "probability": p, "linked": same,
                          **{f"level_{f}": levels[f] for f in FIELDS}}, copy=False)  # the arrays, not a copy
    lo, hi = review_band
    stats["pairs_for_review"] = int(((p >= lo) & (p < hi)).sum())
    clock.lap("output")
    stats["profile"] = clock.laps
    return LinkResult(cluster=row_cluster, signature_probability=best, signature=row_sig, pairs=pairs, model=model,
                      stats=stats, first_row=first_row)

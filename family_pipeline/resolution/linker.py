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

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from family_pipeline.lib.identifiers import valid_iin_mask
from family_pipeline.resolution.blocking import BlockingPass, candidate_pairs, dense_codes
from family_pipeline.resolution.clustering import cluster
from family_pipeline.resolution.comparisons import FIELDS, LEVELS, NO_DATE, compare
from family_pipeline.resolution.model import FellegiSunter, pattern_codes
from family_pipeline.resolution.normalize import (
    name_key,
    patronymic_stem,
    sex_from_iin,
    split_full_name,
)

__all__ = ["COLUMNS", "DEFAULT_PASSES", "LinkResult", "link"]

#: what a column mapping may name
COLUMNS = ("national_id", "last_name", "first_name", "patronymic", "full_name", "birth_date", "sex", "region")
DEFAULT_PASSES = [
    BlockingPass("national_id", ("national_id",), cap=200),
    BlockingPass("birth_date+last_name", ("birth_date", "last_name")),
    BlockingPass("birth_date+first_name", ("birth_date", "first_name")),
    BlockingPass("last_name+first_name+birth_year", ("last_name", "first_name", "birth_year"),
                 only_when_missing=("national_id",)),
    BlockingPass("name_pair+birth_date", ("name_lo", "name_hi", "birth_date")),
    BlockingPass("last_name+first_name+patronymic", ("last_name", "first_name", "patronymic"),
                 only_when_missing=("birth_date",)),
    BlockingPass("id_prefix+first_name", ("id_prefix", "first_name"), only_when_missing=("birth_date",)),
]
_SEX = {"M": 0, "F": 1, "m": 0, "f": 1, "М": 0, "Ж": 1, "м": 0, "ж": 1, "male": 0, "female": 1}


@dataclass
class LinkResult:
    #: cluster id per input row (0..k-1, numbered in order of first appearance)
    cluster: np.ndarray
    #: how sure the row's link into its cluster is (1.0 for a cluster of one signature)
    probability: np.ndarray
    #: signature (distinct normalised record) per input row
    signature: np.ndarray
    #: scored candidate pairs of signatures, with a representative input row of each side
    pairs: pd.DataFrame
    model: FellegiSunter
    stats: dict = field(default_factory=dict)


def _key_table(values: pd.Series, how) -> tuple[np.ndarray, np.ndarray]:
    """(code of each row into the column's distinct values, -1 missing; normalised key per value)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.asarray(codes, np.int64), np.array([how(u) for u in uniques], dtype=object)


def _shared_vocabulary(*tables: tuple[np.ndarray, np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Codes of every row into one vocabulary of keys shared by several columns."""
    keys = np.concatenate([k for _, k in tables]) if tables else np.array([], dtype=object)
    vcodes, vocab = pd.factorize(pd.Series(keys, dtype=object), use_na_sentinel=True)
    vcodes = np.asarray(vcodes, np.int64)
    out, start = [], 0
    for codes, k in tables:
        mapping = vcodes[start:start + len(k)]
        start += len(k)
        out.append(np.where(codes >= 0, mapping[np.maximum(codes, 0)] if len(k) else -1, -1))
    return out, np.asarray(vocab, dtype=object)


def _prepare(records: pd.DataFrame, columns: Mapping[str, str], national_id: str) -> tuple[dict, dict]:
    unknown = set(columns) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown mapping key(s) {sorted(unknown)}; expected some of {COLUMNS}")
    missing = [c for c in columns.values() if c not in records.columns]
    if missing:
        raise KeyError(f"columns {missing} are not in the records")
    n = len(records)
    none = pd.Series([None] * n, dtype=object)

    def col(name: str) -> pd.Series:
        return records[columns[name]].reset_index(drop=True) if name in columns else none

    # names: each column's distinct values are normalised once; a full name fills missing parts
    ln, fn, pt = _key_table(col("last_name"), name_key), _key_table(col("first_name"), name_key), \
        _key_table(col("patronymic"), patronymic_stem)
    if "full_name" in columns:
        full_codes, full_uniques = pd.factorize(col("full_name"), use_na_sentinel=True)
        full_codes = np.asarray(full_codes, np.int64)
        parts = split_full_name(pd.Series(np.asarray(full_uniques, dtype=object), dtype=object))
        full_ln = (full_codes, np.array([name_key(v) for v in parts.last_name], dtype=object))
        full_fn = (full_codes, np.array([name_key(v) for v in parts.first_name], dtype=object))
        full_pt = (full_codes, np.array([patronymic_stem(v) for v in parts.patronymic], dtype=object))
    else:
        empty = (np.full(n, -1, np.int64), np.array([], dtype=object))
        full_ln = full_fn = full_pt = empty
    (ln_c, fn_c, fl_c, ff_c), names = _shared_vocabulary(ln, fn, full_ln, full_fn)
    ln_c = np.where(ln_c >= 0, ln_c, fl_c)
    fn_c = np.where(fn_c >= 0, fn_c, ff_c)
    (pt_c, fp_c), pt_v = _shared_vocabulary(pt, full_pt)
    pt_c = np.where(pt_c >= 0, pt_c, fp_c)

    # identifiers: spaces and dashes dropped, upper case — on the distinct values only
    raw_c, raw_v = pd.factorize(col("national_id"), use_na_sentinel=True)
    cleaned = pd.Series(np.asarray(raw_v, dtype=object), dtype="string").str.replace(r"[\s\-]", "", regex=True).str.upper()
    cleaned = cleaned.where(cleaned.str.len() > 0)
    map_c, id_v = pd.factorize(cleaned, use_na_sentinel=True)
    raw_c, map_c = np.asarray(raw_c, np.int64), np.asarray(map_c, np.int64)
    id_c = np.where(raw_c >= 0, map_c[np.maximum(raw_c, 0)] if len(map_c) else -1, -1)
    bd = pd.to_datetime(col("birth_date"), errors="coerce").to_numpy().astype("datetime64[D]")
    days = np.where(np.isnat(bd), NO_DATE, bd.astype(np.int64))
    sex_raw, sex_values = pd.factorize(col("sex"), use_na_sentinel=True)
    sex_of_value = np.array([_SEX.get(v, -1) for v in sex_values], np.int64)
    sex = np.where(sex_raw >= 0, sex_of_value[np.maximum(sex_raw, 0)] if len(sex_values) else -1, -1).astype(np.int64)
    id_v = np.asarray(id_v, dtype=object)
    if national_id == "iin":
        sex_codes = pd.Series(sex_from_iin(id_v)).map(_SEX).fillna(-1).astype(np.int64).to_numpy()
        from_iin = np.where(np.asarray(id_c) >= 0, sex_codes[np.maximum(np.asarray(id_c), 0)] if len(id_v) else -1, -1)
        sex = np.where(sex < 0, from_iin, sex)
    region_c, _ = pd.factorize(col("region"), use_na_sentinel=True)
    rec = {"national_id": np.asarray(id_c, np.int64), "last_name": ln_c.astype(np.int64), "first_name": fn_c.astype(np.int64),
           "patronymic": pt_c.astype(np.int64), "birth_date": days.astype(np.int64), "sex": sex.astype(np.int64),
           "region": np.asarray(region_c, np.int64)}
    # identifiers that pass their check digit (only IINs can be checked here)
    checked = valid_iin_mask(id_v) if national_id == "iin" and len(id_v) else np.zeros(len(id_v), bool)
    vocab_out = {"name": names, "patronymic": pt_v, "national_id": id_v, "national_id_checked": np.asarray(checked, bool)}
    return rec, vocab_out


def _signatures(rec: dict) -> tuple[np.ndarray, dict, np.ndarray, np.ndarray]:
    """(signature per row, signature table, mention count per signature, first row per signature)."""
    sig = dense_codes(list(rec.values()))
    # signatures are numbered in order of first appearance: a row is a first one where it raises
    # the running maximum
    seen = np.maximum.accumulate(sig) if len(sig) else sig
    first = np.flatnonzero(np.r_[True, seen[1:] > seen[:-1]]) if len(sig) else np.empty(0, np.int64)
    table = {k: v[first] for k, v in rec.items()}
    return sig, table, np.bincount(sig), first


def _blocking_table(sig: dict, vocab: dict) -> dict:
    days = sig["birth_date"]
    has = days != NO_DATE
    year = np.where(has, days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64), -1)
    ids = vocab["national_id"]
    prefix_codes, _ = pd.factorize(pd.Series([str(x)[:6] for x in ids], dtype=object)) if len(ids) else (np.array([], np.int64), None)
    prefix = np.where(sig["national_id"] >= 0, np.asarray(prefix_codes, np.int64)[np.maximum(sig["national_id"], 0)] if len(ids) else -1, -1)
    lo = np.minimum(sig["last_name"], sig["first_name"])
    hi = np.maximum(sig["last_name"], sig["first_name"])
    return {"national_id": sig["national_id"], "birth_date": np.where(has, days, -1), "last_name": sig["last_name"],
            "first_name": sig["first_name"], "patronymic": sig["patronymic"], "birth_year": year,
            "name_lo": np.where(lo >= 0, lo, -1), "name_hi": np.where(lo >= 0, hi, -1), "id_prefix": prefix}


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


def _exact_u(agreeing: dict[str, tuple[float, float]], matches: float = 0.0, m_exact: dict[str, float] | None = None) -> dict[str, float]:
    """P(two signatures agree exactly | different persons). Agreeing pairs of the same person are
    taken out (``matches`` expected matching pairs, ``m_exact`` their agreement rate); at least
    one coincidence in the whole space is assumed, so no weight is infinite."""
    out = {}
    for f, (agree, total) in agreeing.items():
        coincidences = agree - matches * (m_exact or {}).get(f, 0.0)
        out[f] = float(max(coincidences, 1.0, agree * 1e-4) / total)
    return out


def _term_frequencies(sig: dict, i: np.ndarray, fields=("last_name", "first_name")) -> dict[str, np.ndarray]:
    tf = {}
    for f in fields:
        v = sig[f]
        present = v >= 0
        freq = np.zeros(v.max() + 2 if len(v) else 1)
        if present.any():
            freq[: v[present].max() + 1] = np.bincount(v[present]) / present.sum()
        tf[f] = freq[np.maximum(v[i], 0)]
    return tf


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


class _Clock:
    """Wall seconds per stage of a run (reported in ``LinkResult.stats["seconds"]``)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._t, 2)
        self._t = now


def link(records: pd.DataFrame, columns: Mapping[str, str], *, national_id: str = "any", threshold: float = 0.5,
         model: FellegiSunter | None = None, passes: list[BlockingPass] | None = None, seed: int = 0,
         review_band: tuple[float, float] = (0.05, 0.95), u_sample: int = 1_000_000) -> LinkResult:
    """Link person records; see the module docstring. ``model`` reuses fitted parameters."""
    if national_id not in ("any", "iin"):
        raise ValueError("national_id must be 'any' or 'iin'")
    clock = _Clock()
    rec, vocab = _prepare(records, columns, national_id)
    clock.lap("prepare")
    row_sig, sig, support, first_row = _signatures(rec)
    del rec
    n_sig = len(support)
    stats: dict = {"records": int(len(records)), "signatures": int(n_sig)}
    clock.lap("signatures")
    i, j, block_stats = candidate_pairs(_blocking_table(sig, vocab), passes or DEFAULT_PASSES)
    stats["blocking"] = block_stats
    stats["candidate_pairs"] = int(len(i))
    clock.lap("blocking")
    levels = compare(sig, vocab, i, j)
    tf = _term_frequencies(sig, i)
    clock.lap("compare")
    if model is None:
        model = FellegiSunter(levels=dict(LEVELS), tf_fields=("last_name", "first_name"))
        ra, rb = _random_pairs(n_sig, min(u_sample, max(n_sig * 4, 1000)), seed)
        random_levels = compare(sig, vocab, ra, rb)
        agreeing = _agreeing_pairs(sig)
        model.estimate_u(random_levels, _exact_u(agreeing))
        model.initial_m()
        model.estimate_m_from_anchors(levels, _anchors(levels))
        # EM runs over the distinct comparison patterns; they are computed once for every pass
        em_levels = {**levels, "_patterns": pattern_codes(levels, tuple(model.levels))}
        model.estimate_prior(em_levels)
        # exact agreement of different persons: the agreeing pairs less those of the same person
        matches = model.prior * len(i)
        model.estimate_u(random_levels, _exact_u(agreeing, matches, {f: model.m[f][-1] for f in agreeing}))
        model.estimate_prior(em_levels)
        # the prior over every pair of signatures, not over the blocked candidates: u comes from
        # random pairs, so the prior must describe random pairs too
        all_pairs = n_sig * (n_sig - 1) / 2
        model.prior = float(min(max(model.prior * len(i) / max(all_pairs, 1), 1e-12), 0.5))
    clock.lap("estimate")
    p = model.probability(levels, tf) if len(i) else np.empty(0)
    del tf
    clock.lap("score")

    checked = vocab["national_id_checked"]

    def compatible(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        lv = compare(sig, vocab, a, b, fields=("national_id", "last_name", "first_name", "birth_date"))
        ida, idb = sig["national_id"][a], sig["national_id"][b]
        both_checked = (ida >= 0) & (idb >= 0) & checked[np.maximum(ida, 0)] & checked[np.maximum(idb, 0)]
        vouched = (lv["birth_date"] == 3) & (lv["first_name"] >= 2)  # a copied or mistyped id
        return ~((lv["birth_date"] == 0) | (lv["first_name"] == 0)
                 | ((lv["national_id"] == 0) & both_checked & ~vouched))

    labels, cstats = cluster(n_sig, i, j, p, threshold, support, compatible)
    stats["clustering"] = cstats
    clock.lap("cluster")
    # the strongest link that holds each signature in its cluster
    same = labels[i] == labels[j]
    best = np.zeros(n_sig)
    np.maximum.at(best, i[same], p[same])
    np.maximum.at(best, j[same], p[same])
    sizes = np.bincount(labels)
    best[sizes[labels] == 1] = 1.0
    # clusters numbered by their first input row
    first_of_cluster = np.full(labels.max() + 1 if n_sig else 0, len(records), np.int64)
    np.minimum.at(first_of_cluster, labels[row_sig], np.arange(len(records)))
    rank = np.empty_like(first_of_cluster)
    rank[np.argsort(first_of_cluster, kind="stable")] = np.arange(len(first_of_cluster))
    row_cluster = rank[labels[row_sig]]
    stats["clusters"] = int(len(first_of_cluster))
    pairs = pd.DataFrame({"signature_a": i, "signature_b": j, "row_a": first_row[i], "row_b": first_row[j],
                          "probability": p, "linked": same,
                          **{f"level_{f}": levels[f] for f in FIELDS}})
    lo, hi = review_band
    stats["pairs_for_review"] = int(((p >= lo) & (p < hi)).sum())
    clock.lap("output")
    stats["seconds"] = clock.laps
    return LinkResult(cluster=row_cluster, probability=best[row_sig], signature=row_sig, pairs=pairs, model=model, stats=stats)

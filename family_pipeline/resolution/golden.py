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

import numpy as np
import pandas as pd

from family_pipeline.lib.pseudonym import pseudonym_ints
from family_pipeline.resolution.normalize import split_full_name

__all__ = ["AUTHORITY", "FIELDS", "folding_registries", "golden_records", "person_ids"]

#: the registry whose values win where it has them
AUTHORITY = "gbd_fl"
FIELDS = ("iin", "last_name", "first_name", "patronymic", "birth_date", "sex", "region", "address", "death_date")


def folding_registries(catalog) -> frozenset[str]:
    """Registries exported in a single-byte encoding, which folds Kazakh letters to Russian ones."""
    return frozenset(r.code for r in catalog.registries if r.source.encoding == "cp1251")


def _ranked_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes that order like the values (-1 missing), sorting only the distinct values."""
    codes, values = pd.factorize(column, use_na_sentinel=True)
    values = np.asarray(values, dtype=object)
    order = np.argsort(values.astype(str), kind="stable")
    rank = np.empty(len(values), np.int64)
    rank[order] = np.arange(len(values))
    codes = np.asarray(codes, np.int64)
    return np.where(codes >= 0, rank[np.maximum(codes, 0)] if len(values) else -1, -1), values[order]


def _first_per_group(group: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Index of the first row of each group after sorting by ``keys`` (most significant first)."""
    order = np.lexsort(tuple(reversed((group, *keys))))
    g = group[order]
    first = np.r_[True, g[1:] != g[:-1]] if len(g) else np.array([], bool)
    return order[first]


def person_ids(mentions: pd.DataFrame, cluster: np.ndarray) -> np.ndarray:
    """A stable id per cluster: keyed hash of its IIN (checked, as the authority has it), else of
    its first mention. An IIN claimed by several clusters stays with the one with most mentions."""
    cluster = np.asarray(cluster, np.int64)
    iin_codes, iin_values = _ranked_codes(mentions["iin"])
    has = (iin_codes >= 0) & mentions["iin_valid"].fillna(False).to_numpy(dtype=bool)
    auth = (mentions["registry"] == AUTHORITY).to_numpy()
    rows = np.arange(len(mentions))
    best = _first_per_group(cluster, ~has, ~auth, np.where(has, iin_codes, np.iinfo(np.int64).max), rows)
    k = int(cluster.max()) + 1 if len(cluster) else 0
    anchor_iin = np.full(k, -1, np.int64)
    anchor_iin[cluster[best]] = np.where(has[best], iin_codes[best], -1)
    first_row = np.full(k, len(mentions), np.int64)
    np.minimum.at(first_row, cluster, rows)
    size = np.bincount(cluster, minlength=k)
    claimed = np.flatnonzero(anchor_iin >= 0)
    keep = _first_per_group(anchor_iin[claimed], -size[claimed], claimed)
    owner = np.zeros(k, bool)
    owner[claimed[keep]] = True
    values = np.asarray(iin_values, dtype=object)
    key = mentions["registry"].to_numpy(dtype=object)[first_row] + "/" + mentions["record_id"].to_numpy(dtype=object)[first_row] \
        + "/" + mentions["group"].to_numpy(dtype=object)[first_row]
    anchor = np.where(owner, "iin:" + values[np.maximum(anchor_iin, 0)].astype(str) if len(values) else "", "mention:" + key.astype(str))
    return pseudonym_ints(anchor)[cluster]


def golden_records(mentions: pd.DataFrame, person_id: np.ndarray, folding_registries: frozenset[str] = frozenset()) -> pd.DataFrame:
    """``folding_registries``: registries that cannot write Kazakh letters (single-byte exports);
    their votes on how a name is spelled count only where no other registry spells it."""
    pid_values, pid_codes = np.unique(np.asarray(person_id, np.int64), return_inverse=True)
    p = np.asarray(pid_codes, np.int64)
    n_persons = len(pid_values)
    reg_codes, reg_values = _ranked_codes(mentions["registry"])
    auth = (mentions["registry"] == AUTHORITY).to_numpy()
    full_alphabet = ~mentions["registry"].isin(folding_registries).to_numpy()
    persons = pd.DataFrame({"person_id": np.asarray(pid_values, np.int64)})
    # name parts missing in a mention come from its full name, split once per distinct full name
    full_codes, full_uniques = pd.factorize(mentions["full_name"], use_na_sentinel=True)
    full_codes = np.asarray(full_codes, np.int64)
    parts = split_full_name(pd.Series(np.asarray(full_uniques, dtype=object), dtype=object))
    for f in FIELDS:
        if f not in mentions.columns:
            continue
        column = mentions[f]
        if f in ("last_name", "first_name", "patronymic"):
            spread = parts[f].to_numpy(dtype=object)
            filler = np.where(full_codes >= 0, spread[np.maximum(full_codes, 0)] if len(spread) else None, None)
            column = pd.Series(np.where(column.isna().to_numpy(), filler, column.to_numpy(dtype=object)), dtype=object)
        codes, values = _ranked_codes(column)
        present = np.flatnonzero(codes >= 0)
        if len(present) == 0:
            persons[f] = None
            persons[f"{f}_source"] = None
            continue
        key = p[present] * (len(values) + 1) + codes[present]
        uniq, inverse, count = np.unique(key, return_inverse=True, return_counts=True)
        has_auth = np.zeros(len(uniq), bool)
        np.logical_or.at(has_auth, inverse, auth[present])
        source = np.full(len(uniq), np.iinfo(np.int64).max)
        np.minimum.at(source, inverse, np.where(auth[present], -1, reg_codes[present]))  # the authority, else the first registry
        spelled = np.zeros(len(uniq), np.int64)
        if f in ("last_name", "first_name", "patronymic"):
            np.add.at(spelled, inverse, full_alphabet[present].astype(np.int64))
        checked = np.zeros(len(uniq), bool)
        if f == "iin":
            np.logical_or.at(checked, inverse, mentions["iin_valid"].fillna(False).to_numpy(dtype=bool)[present])
        owner, value = uniq // (len(values) + 1), uniq % (len(values) + 1)
        best = _first_per_group(owner, ~checked, -spelled, -count, ~has_auth, value)
        out_values = np.full(n_persons, None, dtype=object)
        out_source = np.full(n_persons, None, dtype=object)
        vals = np.asarray(values, dtype=object)
        out_values[owner[best]] = vals[value[best]]
        src = source[best]
        out_source[owner[best]] = np.where(src < 0, AUTHORITY, reg_values[np.clip(src, 0, len(reg_values) - 1)])
        persons[f] = out_values
        persons[f"{f}_source"] = out_source
    persons["mentions"] = np.bincount(p, minlength=n_persons)
    pairs = np.unique(p * (len(reg_values) + 1) + reg_codes)
    persons["registries"] = np.bincount(pairs // (len(reg_values) + 1), minlength=n_persons)
    persons["alive"] = persons["death_date"].isna() if "death_date" in persons else True
    # an IIN identifies one person: where records copied it onto someone else (a relative), the
    # person with the most mentions keeps it and the others are flagged for review
    order = persons.sort_values(["iin", "mentions", "person_id"], ascending=[True, False, True], kind="stable")
    disputed = order.iin.notna() & order.iin.duplicated(keep="first")
    persons["iin_disputed"] = False
    persons.loc[order.index[disputed], ["iin", "iin_source"]] = None
    persons.loc[order.index[disputed], "iin_disputed"] = True
    return persons

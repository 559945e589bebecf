"""Golden records: one row per person from all of their mentions, by survivorship rules.

For every field the surviving value is, in order: from the population register (ГБД ФЛ, the
authority on identity) when it has one; a checked IIN over one that fails its check digit; the
value most mentions agree on; the smallest value (so ties are deterministic). Each field keeps
the registry it came from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from family_pipeline.lib.pseudonym import pseudonym_ints
from family_pipeline.resolution.normalize import split_full_name

__all__ = ["AUTHORITY", "FIELDS", "golden_records", "person_ids"]

#: the registry whose values win where it has them
AUTHORITY = "gbd_fl"
FIELDS = ("iin", "last_name", "first_name", "patronymic", "birth_date", "sex", "region", "address", "death_date")


def person_ids(mentions: pd.DataFrame, cluster: np.ndarray) -> np.ndarray:
    """A stable id per cluster: keyed hash of its IIN as the authority has it, else its first mention."""
    frame = pd.DataFrame({"cluster": cluster, "iin": mentions["iin"].to_numpy(dtype=object),
                          "valid": mentions["iin_valid"].fillna(False).to_numpy(dtype=bool),
                          "auth": (mentions["registry"] == AUTHORITY).to_numpy(),
                          "mention": (mentions["registry"] + "/" + mentions["record_id"] + "/" + mentions["group"]).to_numpy(dtype=object)})
    frame["has"] = frame.iin.notna() & frame.valid
    frame = frame.sort_values(["cluster", "has", "auth", "iin", "mention"], ascending=[True, False, False, True, True], kind="stable")
    first = frame.drop_duplicates("cluster").copy()
    # an IIN anchors one person only: where several clusters would claim it (a relative's IIN
    # copied onto records), the cluster with the most mentions keeps it
    first["size"] = np.bincount(cluster)[first.cluster.to_numpy()]
    claim = first[first.has].sort_values(["iin", "size", "cluster"], ascending=[True, False, True], kind="stable")
    owner = claim.drop_duplicates("iin").cluster
    first["has"] = first.has & first.cluster.isin(owner)
    anchor = np.where(first.has, "iin:" + first.iin.astype(str), "mention:" + first.mention.astype(str))
    ids = pd.Series(pseudonym_ints(anchor), index=first.cluster.to_numpy())
    return ids.reindex(cluster).to_numpy()


def golden_records(mentions: pd.DataFrame, person_id: np.ndarray) -> pd.DataFrame:
    m = mentions.copy()
    m["person_id"] = person_id
    codes, uniques = pd.factorize(m["full_name"], use_na_sentinel=True)
    parts = split_full_name(pd.Series(uniques, dtype=object))
    for col in ("last_name", "first_name", "patronymic"):
        spread = np.where(codes >= 0, parts[col].to_numpy(dtype=object)[np.maximum(codes, 0)] if len(uniques) else None, None)
        m[col] = m[col].where(m[col].notna(), spread)
    m["authority"] = (m["registry"] == AUTHORITY).astype(np.int8)
    persons = pd.DataFrame({"person_id": np.unique(person_id)})
    for f in FIELDS:
        if f not in m.columns:
            continue
        sub = m.loc[m[f].notna(), ["person_id", f, "registry", "authority"] + (["iin_valid"] if f == "iin" else [])]
        if sub.empty:
            persons[f] = None
            persons[f"{f}_source"] = None
            continue
        keys = ["person_id", f]
        agg = sub.groupby(keys, sort=False).agg(n=("registry", "size"), authority=("authority", "max"),
                                                 source=("registry", "min"),
                                                 **({"checked": ("iin_valid", "max")} if f == "iin" else {})).reset_index()
        auth_source = sub[sub.authority == 1].groupby(keys, sort=False).registry.first()
        agg["source"] = auth_source.reindex(pd.MultiIndex.from_frame(agg[keys])).fillna(pd.Series(agg.source.to_numpy(), index=pd.MultiIndex.from_frame(agg[keys]))).to_numpy()
        order = ["person_id", "authority"] + (["checked"] if f == "iin" else []) + ["n", f]
        asc = [True, False] + ([False] if f == "iin" else []) + [False, True]
        best = agg.sort_values(order, ascending=asc, kind="stable").drop_duplicates("person_id")
        best = best.set_index("person_id")
        persons[f] = best[f].reindex(persons.person_id).to_numpy()
        persons[f"{f}_source"] = best["source"].reindex(persons.person_id).to_numpy()
    counts = m.groupby("person_id").agg(mentions=("registry", "size"), registries=("registry", "nunique"))
    persons["mentions"] = counts.mentions.reindex(persons.person_id).to_numpy()
    persons["registries"] = counts.registries.reindex(persons.person_id).to_numpy()
    # an IIN identifies one person: where records copied it onto someone else (a relative), the
    # person with the most mentions keeps it and the others are flagged for review
    order = persons.sort_values(["iin", "mentions", "person_id"], ascending=[True, False, True], kind="stable")
    disputed = order.iin.notna() & order.iin.duplicated(keep="first")
    persons["iin_disputed"] = False
    persons.loc[order.index[disputed], ["iin", "iin_source"]] = None
    persons.loc[order.index[disputed], "iin_disputed"] = True
    persons["alive"] = persons["death_date"].isna() if "death_date" in persons else True
    return persons

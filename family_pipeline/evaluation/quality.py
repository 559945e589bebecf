"""Data quality against the truth: for each defect kind the generator injected, how many of its
records some check flagged; and how many flagged records carry no injected defect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from family_pipeline.catalog import catalog
from family_pipeline.lib.alphabet import FOLD_TABLE
from family_pipeline.lib.lake import Lake
from family_pipeline.quality import read_flags

__all__ = ["quality_section"]

#: defects about a whole registry, not a record: caught when the named check fails on it
REGISTRY_LEVEL = {"stale_extract": "freshness"}


#: a region column no role ties to a person still describes one of the record's persons when, in
#: the truth, it equals that person's region on at least this share of the registry's records
#: without an injected defect (a newborn's mother, an animal's owner, a plot's owner); below it
#: the column records something no other registry knows (where a marriage was registered), and a
#: wrong value there has nothing to differ from
COLUMN_FOLLOWS = 0.98
#: tag typos that leave a well-formed tag: seen only against another record of the same animal
SILENT_TAG_TYPOS = {"substitution", "transposition"}
_NAME_PARTS = ("last_name", "first_name", "patronymic")


def _checkable(defects: pd.DataFrame, lake: Lake | None = None) -> pd.Series:
    """Whether a record-level check can see the defect at all. Not checkable:

    * folding Kazakh letters in an export whose encoding folds them anyway;
    * a relative's or mistyped valid IIN on a reference made by IIN alone: another valid IIN is
      all there is to see;
    * a wrong region in a column that describes none of the record's persons (see
      :data:`COLUMN_FOLLOWS`; measured on the truth when ``lake`` is given, else only the
      catalog's person roles count);
    * a name typo that changed nothing the export can carry (two equal letters swapped, a letter
      replaced by itself, a Kazakh letter mistyped as its look-alike in an export that folds it):
      the written name is the person's true name;
    * a tag typo that leaves a well-formed tag on the only record of its animal: there is no
      other record to differ from.

    ``defects`` carries ``detail``; ``lake`` (with its truth) enables the last three tests."""
    specs = {s.code: s for s in catalog().registries}
    out = []
    follows = _region_columns_that_follow(lake, specs) if lake is not None else set()
    for kind, registry, column in zip(defects.kind, defects.registry, defects.column):
        spec = specs.get(registry)
        if spec is None:
            out.append(True)
        elif kind == "letter_folding" and spec.source.encoding == "cp1251":
            out.append(False)
        elif kind == "wrong_region" and column in {c.name for c in spec.columns}:
            group = spec.column(column).role_group
            out.append((group is not None and group != "animal") or (registry, column) in follows)
        elif kind in ("iin_relative", "iin_wrong_valid") and column in {c.name for c in spec.columns}:
            # a reference by IIN alone: another valid IIN is all there is to see
            group = spec.column(column).role_group
            parts = set(spec.role_columns(group)) if group else set()
            out.append(bool(parts - {"iin", "region", "address", "sex"}))
        else:
            out.append(True)
    checkable = pd.Series(out, index=defects.index, dtype=bool)
    if lake is not None:
        checkable &= ~_invisible_name_typos(lake, defects, specs)
        checkable &= ~_lone_tag_typos(lake, defects)
    return checkable


class _TruthMentions:
    """The truth's mentions of some registries, read once: who each (record, group) really is."""

    def __init__(self, lake: Lake, registries: set[str], record_ids: set[str] | None = None):
        table = pq.read_table(lake.truth("mentions"), filters=[("registry", "in", sorted(registries))]) \
            if registries else None
        if table is not None and record_ids is not None:  # only the records asked about
            table = table.filter(pc.is_in(table.column("record_id"), value_set=pa.array(sorted(record_ids), pa.string())))
        frame = table.to_pandas() if table is not None else pd.DataFrame(
            columns=["registry", "record_id", "group", "person_id"])
        self.by_registry = {r: f.set_index(["record_id", "group"]).person_id[lambda x: ~x.index.duplicated()]
                            for r, f in frame.groupby("registry")}

    def person_of(self, keys: pd.DataFrame) -> np.ndarray:
        """Person ids for ``keys`` of one registry (NaN where the truth has none)."""
        index = self.by_registry.get(keys.registry.iloc[0]) if len(keys) else None
        if index is None:
            return np.full(len(keys), np.nan)
        return index.reindex(pd.MultiIndex.from_arrays([keys.record_id, keys.group])).to_numpy(dtype=float)


def _region_columns_that_follow(lake: Lake, specs: dict) -> set[tuple[str, str]]:
    """(registry, region column) pairs whose correct values are, in the truth, the region of one
    of the record's persons (:data:`COLUMN_FOLLOWS`)."""
    mentions = _TruthMentions(lake, {s.code for s in specs.values() if s.person_groups and any(
        c.type == "region" and c.role_group in (None, "animal") for c in s.columns)})
    defects = pd.read_parquet(lake.truth("defects"), columns=["registry", "record_id"]).dropna()
    persons = pd.read_parquet(lake.truth("persons"), columns=["person_id", "region"]).set_index("person_id").region
    out = set()
    for spec in specs.values():
        columns = [c.name for c in spec.columns if c.type == "region" and (c.role_group in (None, "animal"))]
        if not columns or not spec.person_groups or not lake.table("registries", spec.code).exists():
            continue
        clean = lake.read("registries", spec.code, columns=[spec.record_id, *columns]).to_pandas()
        clean = clean[~clean[spec.record_id].astype(str).isin(set(defects.record_id[defects.registry == spec.code]))]
        ids = clean[spec.record_id].astype(str).to_numpy()
        for group in spec.person_groups:
            keys = pd.DataFrame({"registry": spec.code, "record_id": ids, "group": group})
            true_region = persons.reindex(mentions.person_of(keys)).to_numpy()
            for col in columns:
                values = clean[col].to_numpy(dtype=object)
                both = pd.notna(values) & pd.notna(true_region)
                if both.sum() and (values[both] == true_region[both]).mean() >= COLUMN_FOLLOWS:
                    out.add((spec.code, col))
    return out


def _invisible_name_typos(lake: Lake, defects: pd.DataFrame, specs: dict) -> pd.Series:
    """Name typos whose written value equals the person's true name as the export can write it."""
    out = pd.Series(False, index=defects.index)
    typos = defects[(defects.kind == "name_typo") & defects.registry.isin(specs)]
    if typos.empty:
        return out
    persons = pd.read_parquet(lake.truth("persons"), columns=["person_id", *_NAME_PARTS]).set_index("person_id")
    mentions = _TruthMentions(lake, set(typos.registry), set(typos.record_id))
    for registry, d in typos.groupby("registry"):
        spec = specs[registry]
        path = lake.table("registries", registry)
        if not path.exists():
            continue
        columns = sorted(set(d.column.dropna()) & {c.name for c in spec.columns})
        clean = lake.read("registries", registry, columns=[spec.record_id, *columns]).to_pandas()
        clean = clean.drop_duplicates(spec.record_id).set_index(clean[spec.record_id].astype(str).drop_duplicates())
        for column, dc in d[d.column.isin(columns)].groupby("column"):
            col = spec.column(column)
            keys = pd.DataFrame({"registry": registry, "record_id": dc.record_id.to_numpy(), "group": col.role_group})
            who = persons.reindex(mentions.person_of(keys))
            if col.role_part == "full_name":
                true = who.last_name.fillna("") + " " + who.first_name.fillna("") + (" " + who.patronymic).fillna("")
            else:
                true = who[col.role_part]
            written = clean[column].reindex(dc.record_id.to_numpy())
            a = pd.Series(written.to_numpy(dtype=object), dtype="string").str.strip()
            b = pd.Series(true.to_numpy(dtype=object), dtype="string").str.strip()
            if spec.source.encoding == "cp1251":
                a, b = a.str.translate(FOLD_TABLE), b.str.translate(FOLD_TABLE)
            same = (a == b).fillna(False).to_numpy(dtype=bool)
            out.loc[dc.index[same]] = True
    return out


def _lone_tag_typos(lake: Lake, defects: pd.DataFrame) -> pd.Series:
    """Tag typos that leave a well-formed tag on an animal no other record names."""
    silent = (defects.kind == "tag_typo") & defects.detail.isin(SILENT_TAG_TYPOS)
    if not silent.any() or not lake.truth("animal_records").exists():
        return pd.Series(False, index=defects.index)
    records = pd.read_parquet(lake.truth("animal_records"), columns=["registry", "record_id", "animal_id"])
    records["n"] = records.groupby("animal_id").animal_id.transform("size")
    d = defects.loc[silent, ["registry", "record_id"]].merge(records, on=["registry", "record_id"], how="left")
    lone = pd.Series(False, index=defects.index)
    lone.loc[defects.index[silent]] = (d.n.fillna(1) <= 1).to_numpy()
    return lone


def quality_section(lake: Lake) -> dict:
    flags = read_flags(lake).to_pandas()
    if flags.empty:
        return {"status": "not materialized"}
    defects = pd.read_parquet(lake.truth("defects"), columns=["kind", "registry", "record_id", "column", "detail"])
    defects["checkable"] = _checkable(defects, lake)
    flagged = flags.dropna(subset=["record_id"]).drop_duplicates(["registry", "record_id"])
    kinds = {}
    for kind, d in defects.groupby("kind"):
        if kind in REGISTRY_LEVEL:
            failed = set(flags.loc[flags.check == REGISTRY_LEVEL[kind], "registry"])
            hit = d.registry.isin(failed)
            kinds[kind] = {"registries_injected": len(d), "registries_caught": int(hit.sum()),
                           "recall": round(float(hit.mean()), 4), "level": "registry"}
            continue
        d = d.sort_values("checkable", ascending=False).drop_duplicates(["registry", "record_id"])
        m = d.merge(flagged[["registry", "record_id", "check"]], on=["registry", "record_id"], how="left")
        caught = m.check.notna()
        by_check = m[caught].groupby("check").size().sort_values(ascending=False)
        checkable = m.checkable.to_numpy()
        kinds[kind] = {"records_injected": len(d), "records_caught": int(caught.sum()),
                       "recall": round(float(caught.mean()), 4) if len(d) else None,
                       "records_checkable": int(checkable.sum()),
                       "recall_checkable": round(float(caught[checkable].mean()), 4) if checkable.any() else None,
                       "caught_by": {k: int(v) for k, v in by_check.items()}}
    injected = defects.dropna(subset=["record_id"])[["registry", "record_id"]].drop_duplicates().assign(_d=True)
    clean_flags = flagged.merge(injected, on=["registry", "record_id"], how="left")
    clean_flags = clean_flags[clean_flags._d.isna()]
    return {
        "status": "ok",
        "defect_kinds": kinds,
        "kinds_caught": sum(1 for v in kinds.values() if (v.get("records_caught") or v.get("registries_caught"))),
        "kinds_injected": len(kinds),
        "flagged_records": len(flagged),
        "flagged_without_injected_defect": {f"{c}:{r}": int(n) for (c, r), n in
                                            clean_flags.groupby(["check", "reason"]).size().items()},
    }

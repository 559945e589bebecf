"""Data quality against the truth: for each defect kind the generator injected, how many of its
records some check flagged; and how many flagged records carry no injected defect."""

from __future__ import annotations

import pandas as pd

from family_pipeline.catalog import catalog
from family_pipeline.lib.lake import Lake
from family_pipeline.quality import read_flags

__all__ = ["quality_section"]

#: defects about a whole registry, not a record: caught when the named check fails on it
REGISTRY_LEVEL = {"stale_extract": "freshness"}


def _checkable(defects: pd.DataFrame) -> pd.Series:
    """Whether a record-level check can see the defect at all: folding Kazakh letters changes
    nothing in an export whose encoding folds them anyway, and a wrong region in a column that
    describes no person (a land parcel's, an animal's) has no reference to differ from, and a
    relative's valid IIN on a reference made by IIN alone looks like any other IIN."""
    specs = {s.code: s for s in catalog().registries}
    out = []
    for kind, registry, column in zip(defects.kind, defects.registry, defects.column):
        spec = specs.get(registry)
        if spec is None:
            out.append(True)
        elif kind == "letter_folding" and spec.source.encoding == "cp1251":
            out.append(False)
        elif kind == "wrong_region" and column in {c.name for c in spec.columns}:
            group = spec.column(column).role_group
            out.append(group is not None and group != "animal")
        elif kind in ("iin_relative", "iin_wrong_valid") and column in {c.name for c in spec.columns}:
            # a reference by IIN alone: another valid IIN is all there is to see
            group = spec.column(column).role_group
            parts = set(spec.role_columns(group)) if group else set()
            out.append(bool(parts - {"iin", "region", "address", "sex"}))
        else:
            out.append(True)
    return pd.Series(out, index=defects.index, dtype=bool)


def quality_section(lake: Lake) -> dict:
    flags = read_flags(lake).to_pandas()
    if flags.empty:
        return {"status": "not materialized"}
    defects = pd.read_parquet(lake.truth("defects"), columns=["kind", "registry", "record_id", "column"])
    defects["checkable"] = _checkable(defects)
    flagged = flags.dropna(subset=["record_id"]).drop_duplicates(["registry", "record_id"])
    kinds = {}
    for kind, d in defects.groupby("kind"):
        if kind in REGISTRY_LEVEL:
            failed = set(flags.loc[flags.check == REGISTRY_LEVEL[kind], "registry"])
            hit = d.registry.isin(failed)
            kinds[kind] = {"registries_injected": int(len(d)), "registries_caught": int(hit.sum()),
                           "recall": round(float(hit.mean()), 4), "level": "registry"}
            continue
        d = d.sort_values("checkable", ascending=False).drop_duplicates(["registry", "record_id"])
        m = d.merge(flagged[["registry", "record_id", "check"]], on=["registry", "record_id"], how="left")
        caught = m.check.notna()
        by_check = m[caught].groupby("check").size().sort_values(ascending=False)
        checkable = m.checkable.to_numpy()
        kinds[kind] = {"records_injected": int(len(d)), "records_caught": int(caught.sum()),
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
        "flagged_records": int(len(flagged)),
        "flagged_without_injected_defect": {f"{c}:{r}": int(n) for (c, r), n in
                                            clean_flags.groupby(["check", "reason"]).size().items()},
    }

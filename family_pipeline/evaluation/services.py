"""The services stage against the truth: the housing-queue audit (precision and recall of every
failing rule against ``truth/housing_queue.parquet`` ``truth_reasons``), the juror exclusions
(against the attributes in ``truth/persons.parquet``) and the benefit assignments (ASP against
the families the generator made poor).

Pipeline persons are mapped to true persons through the mentions: a golden person is the true
person most of its linked mentions belong to.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from family_pipeline.evaluation.person_truth import person_truth
from family_pipeline.evaluation.resolution import true_person_of
from family_pipeline.families.sets import isin, setdiff, unique
from family_pipeline.lib.lake import Lake
from family_pipeline.services.rules import HOUSING_REASONS

__all__ = ["benefit_accuracy", "housing_accuracy", "juror_accuracy", "person_map_of", "services_section",
           "true_person_of"]


def _pr(predicted: np.ndarray, actual: np.ndarray) -> dict:
    tp = int((predicted & actual).sum())
    fp = int((predicted & ~actual).sum())
    fn = int((~predicted & actual).sum())
    return {"precision": round(tp / (tp + fp), 5) if tp + fp else 1.0,
            "recall": round(tp / (tp + fn), 5) if tp + fn else 1.0,
            "true_positives": tp, "false_positives": fp, "false_negatives": fn}


def housing_accuracy(audit: pd.DataFrame, truth_queue: pd.DataFrame, person_map: pd.Series) -> dict:
    """Entry-level precision/recall per reason, for "ineligible at all", and over all (entry,
    reason) pairs. An audit entry is matched to the true entry of the same true person (and
    region where the person has several); true entries the audit never saw count as misses."""
    a = audit.copy()
    a["true_id"] = person_map.reindex(a.person_id).to_numpy()
    t = truth_queue[["entry_id", "person_id", "region", "truth_reasons"]].rename(columns={"person_id": "true_id"})
    exact = a.merge(t, left_on=["true_id", "queue_region"], right_on=["true_id", "region"], how="inner")
    rest = a[~a.person_id.isin(exact.person_id)].merge(t[~t.entry_id.isin(exact.entry_id)].drop_duplicates("true_id"),
                                                       on="true_id", how="inner")
    m = pd.concat([exact, rest], ignore_index=True).drop_duplicates("entry_id")
    t_all = t.set_index("entry_id")
    seen = t_all.index.isin(m.entry_id)
    out: dict = {"entries_true": int(len(t)), "entries_audited": int(len(audit)),
                 "entries_matched": int(len(m)), "true_entries_missed": int((~seen).sum()),
                 "audit_entries_unmatched": int(len(audit) - len(m))}
    # truth for every true entry; prediction False where the audit did not see the entry
    pred = pd.DataFrame(False, index=t_all.index, columns=list(HOUSING_REASONS))
    pred.loc[m.entry_id.to_numpy(), list(HOUSING_REASONS)] = m[list(HOUSING_REASONS)].to_numpy(bool)
    true_sets = t_all.truth_reasons.fillna("").str.split(";")
    per_reason, all_pred, all_true = {}, [], []
    for name in HOUSING_REASONS:
        actual = true_sets.map(lambda reasons, n=name: n in reasons).to_numpy(bool)
        predicted = pred[name].to_numpy(bool)
        per_reason[name] = _pr(predicted, actual)
        all_pred.append(predicted)
        all_true.append(actual)
    out["per_reason"] = per_reason
    # the address register holds the living: a dead applicant's registration cannot be checked
    dead = true_sets.map(lambda reasons: "dead" in reasons).to_numpy(bool)
    registration = [list(HOUSING_REASONS).index(n) for n in ("no_registration", "registered_too_briefly")]
    out["misses_unobservable_dead_registration"] = int(sum(
        (all_true[i] & ~all_pred[i] & dead).sum() for i in registration))
    out["overall_pairs"] = _pr(np.concatenate(all_pred), np.concatenate(all_true))
    out["ineligible"] = _pr(np.any(all_pred, axis=0), np.any(all_true, axis=0))
    return out


def juror_accuracy(exclusions: pd.DataFrame, truth_persons: pd.DataFrame, person_map: pd.Series,
                   truth_expunged: pd.Series | None = None) -> dict:
    """``exclusions``: person_id + one boolean column per exclusion reason (every living adult
    of the region judged); the truth's attributes say which reasons hold. Reasons without a
    truth attribute are skipped."""
    e = exclusions.copy()
    e["true_id"] = person_map.reindex(e.person_id).to_numpy()
    e = e.dropna(subset=["true_id"])
    # a true person split into several golden records: a reason holds when any of them has it;
    # a listed fragment of a person who should be excluded is counted apart (``excluded_leaks``)
    listed_fragment = (~e.excluded).groupby(e.true_id).any()
    columns = [c for c in e.columns if e[c].dtype == bool]
    e = e.groupby("true_id", sort=True)[columns].any().reset_index()
    tp = truth_persons.set_index("person_id").reindex(e.true_id.astype(np.int64))
    occupation = tp.occupation.fillna("none").to_numpy(dtype=object)
    criminal = tp.criminal_record.fillna(False).to_numpy(bool)
    if truth_expunged is not None:
        criminal = criminal & ~truth_expunged.reindex(e.true_id.astype(np.int64)).fillna(False).to_numpy(bool)
    truth = {
        "criminal_record": criminal,
        "incapable": tp.incapable.fillna(False).to_numpy(bool),
        "judge": occupation == "judge",
        "prosecutor": occupation == "prosecutor",
        "investigator": occupation == "investigator",
        "lawyer": occupation == "lawyer",
        "civil_servant": occupation == "civil_servant",
        "military": occupation == "military",
        "law_enforcement": occupation == "police",
        "psychiatric": tp.psychiatric.fillna(False).to_numpy(bool),
        "narcological": tp.narcological.fillna(False).to_numpy(bool),
        "not_citizen": tp.citizenship.fillna("KZ").to_numpy(dtype=object) != "KZ",
    }
    flags = {"disability": tp.disability_group.fillna(0).to_numpy() > 0, "clergy": occupation == "clergy",
             "over_65": tp.age.fillna(0).to_numpy() > 65}
    out = {"true_persons_judged": int(len(e)), "exclusions": {}, "flags": {}}
    any_pred, any_true = np.zeros(len(e), bool), np.zeros(len(e), bool)
    for name, actual in truth.items():
        if name in e.columns:
            predicted = e[name].to_numpy(bool)
            out["exclusions"][name] = _pr(predicted, actual)
            any_pred |= predicted
            any_true |= actual
    out["excluded_any"] = _pr(any_pred, any_true)
    out["excluded_leaks"] = int((any_true & listed_fragment.reindex(e.true_id).fillna(False).to_numpy(bool)).sum())
    for name, actual in flags.items():
        if name in e.columns:
            out["flags"][name] = _pr(e[name].to_numpy(bool), actual)
    return out


def benefit_accuracy(assignments: pd.DataFrame, truth_persons: pd.DataFrame, truth_families: pd.DataFrame,
                     truth_births: pd.DataFrame, person_map: pd.Series, as_of: pd.Timestamp,
                     excluded_families: np.ndarray | None = None) -> dict:
    """ASP: families assigned (new or continuing) against the true families whose per-capita
    income is below their poverty line (both judged on the family of the recipient; true families
    of pilot category 6 — which get nothing by rule — are left out when ``excluded_families`` (true
    family ids) is given). Birth payment: parents assigned against the true mothers (fathers when
    no mother) of children born in the 12 months up to ``as_of``."""
    out: dict = {}
    family_of = truth_persons.set_index("person_id").family_id
    asp = assignments[assignments.service == "asp"]
    assigned = asp[asp.status.isin(["new", "continuing"])]
    true_fam = family_of.reindex(person_map.reindex(assigned.person_id).to_numpy()).dropna().astype(np.int64)
    poor = truth_families.family_id[truth_families.income_pc < truth_families.poverty_line].to_numpy(np.int64)
    if excluded_families is not None:
        poor = setdiff(poor, excluded_families)
    predicted = unique(true_fam.to_numpy())
    tp = int(isin(predicted, poor).sum())
    out["asp"] = {"precision": round(tp / len(predicted), 5) if len(predicted) else 1.0,
                  "recall": round(tp / len(poor), 5) if len(poor) else 1.0,
                  "assigned_families": int(len(predicted)), "true_poor_families": int(len(poor))}
    births = truth_births[(pd.to_datetime(truth_births.birth_date) > as_of - pd.DateOffset(months=12))
                          & (pd.to_datetime(truth_births.birth_date) <= as_of)]
    parents = unique(np.where(births.mother_id >= 0, births.mother_id, births.father_id))
    parents = parents[parents >= 0]
    bp = assignments[(assignments.service == "birth_payment") & assignments.status.isin(["new", "continuing"])]
    got = unique(person_map.reindex(bp.person_id).dropna().to_numpy(np.int64))
    tp = int(isin(got, parents).sum())
    out["birth_payment"] = {"precision": round(tp / len(got), 5) if len(got) else 1.0,
                            "recall": round(tp / len(parents), 5) if len(parents) else 1.0,
                            "assigned_parents": int(len(got)), "true_parents": int(len(parents))}
    return out


def services_section(lake: Lake) -> dict:
    out: dict = {}
    everyone = None  # the whole person mapping, read once for jurors and benefits
    audit_path = lake.table("services", "housing_queue_audit")
    if audit_path.exists() and lake.truth("housing_queue").exists():
        audit = pd.read_parquet(audit_path)
        person_map = person_map_of(lake, list(_queue_registries()))
        out["housing_queue_audit"] = housing_accuracy(audit, pd.read_parquet(lake.truth("housing_queue")), person_map)
    else:
        out["housing_queue_audit"] = {"skipped": "no housing_queue_audit table or no truth"}
    judged_path = lake.table("services", "juror_exclusions")
    if judged_path.exists():
        judged = pd.read_parquet(judged_path)
        person_map = everyone = person_map_of(lake)
        out["jurors"] = juror_accuracy(judged, pd.read_parquet(lake.truth("persons")), person_map,
                                       truth_expunged(lake))
    else:
        out["jurors"] = {"skipped": "no juror_exclusions table"}
    benefits_path = lake.table("services", "benefit_assignments")
    if benefits_path.exists() and lake.truth("families").exists():
        assignments = pd.read_parquet(benefits_path)
        out["benefits"] = benefit_accuracy(assignments, pd.read_parquet(lake.truth("persons")),
                                           pd.read_parquet(lake.truth("families")), pd.read_parquet(lake.truth("births")),
                                           everyone if everyone is not None else person_map_of(lake),
                                           pd.Timestamp(assignments.period_start.min()))
        out["benefits"]["by_service_status"] = {
            f"{k[0]}:{k[1]}": int(v) for k, v in assignments.groupby(["service", "status"]).size().items()}
    else:
        out["benefits"] = {"skipped": "no benefit_assignments table"}
    return out


def person_map_of(lake: Lake, registries: list[str] | None = None) -> pd.Series:
    """``true_person_of(lake, registries)``; the whole vote is made once per crosswalk (see
    ``evaluation.person_truth``)."""
    if not registries:  # the whole vote, column by column, cached per crosswalk
        return person_truth(lake)
    return true_person_of(lake, registries)


def _queue_registries() -> tuple[str, ...]:
    from family_pipeline.services.rules import housing_rules

    return housing_rules().queue_registries


def truth_expunged(lake: Lake) -> pd.Series | None:
    """true person id -> whether every criminal record the generator wrote for them is expunged
    (the generator draws ``expunged`` per record and keeps it only in the registry it writes)."""
    path = lake.table("registries", "criminal_records")
    if not path.exists():
        return None
    rows = pq.read_table(path, columns=["record_id", "expunged"]).to_pandas()
    mentions = pq.read_table(lake.truth("mentions"), filters=[("registry", "=", "criminal_records")]).to_pandas()
    x = rows.merge(mentions, on="record_id")
    return x.groupby("person_id").expunged.all()

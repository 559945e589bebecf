"""Proactive services (group ``services``): the housing-queue audit, juror long-lists per region
and benefit assignment.

The logic lives in ``family_pipeline.services`` (no Dagster there); these assets read the lake,
call it, write tables back and report counts by reason and region — and, on a synthetic country,
precision and recall against the truth. Metadata never holds a name, an IIN or a person id.

Every asset follows its dependencies (``AutomationCondition.eager()``: a new families or scoring
materialization re-runs the services) and takes an ``as_of`` date, so a past snapshot can be
re-run: ``as_of`` empty means the landing zone's snapshot date (``landing/snapshot.json``), else
today.
"""


import datetime as dt
import time

import dagster as dg
import pandas as pd
import pyarrow as pa

from family_pipeline.catalog import catalog
from family_pipeline.defs.registries import registry_key
from family_pipeline.defs.resources import LakeResource
from family_pipeline.execution import ON_THE_PATH, step_tags
from family_pipeline.lib.lake import Lake, write_parquet
from family_pipeline.quality.expectations import read_snapshot, reference_date
from family_pipeline.services.rules import HOUSING_REASONS, benefit_rules, housing_rules, juror_rules

GROUP = "services"
OWNER = "team:social-services"
PERSONS = dg.AssetKey(["resolution", "persons"])
XREF = dg.AssetKey(["resolution", "person_xref"])
FAMILY_MEMBERS = dg.AssetKey(["families", "family_members"])
FAMILIES = dg.AssetKey(["families", "families"])
FAMILY_FEATURES = dg.AssetKey(["families", "family_features"])

HOUSING_AUDIT = dg.AssetKey([GROUP, "housing_queue_audit"])
HOUSING_OUTSIDE = dg.AssetKey([GROUP, "housing_eligible_outside_queue"])
HOUSING_SUMMARY = dg.AssetKey([GROUP, "housing_queue_summary"])
JUROR_LONGLIST = dg.AssetKey([GROUP, "juror_longlist"])
JUROR_EXCLUSIONS = dg.AssetKey([GROUP, "juror_exclusions"])

#: one long-list partition per region, the 20 ISO codes of seeds/regions.csv
REGION_PARTITIONS = dg.StaticPartitionsDefinition([r.iso for r in catalog().regions])
AUTOMATION = dg.AutomationCondition.eager()


class SnapshotConfig(dg.Config):
    as_of: str = ""
    """ISO date the rules are judged on; empty: the landing zone's snapshot date, else today"""


def as_of_date(config: SnapshotConfig, store: Lake) -> dt.date:
    if config.as_of:
        return dt.date.fromisoformat(config.as_of)
    return reference_date(read_snapshot(store.landing / "snapshot.json"))


def _write(store: Lake, name: str, frame: pd.DataFrame) -> str:
    return str(store.write(GROUP, name, pa.Table.from_pandas(frame, preserve_index=False)))


# ------------------------------------------------------------------ housing-queue audit

def _truth_known(store) -> bool:
    """A synthetic country small enough to measure in the run (see ``evaluation.person_truth``)."""
    from family_pipeline.evaluation.person_truth import in_asset_truth

    return in_asset_truth(store)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(HOUSING_AUDIT, group_name=GROUP, kinds={"parquet"}, owners=[OWNER],
                     automation_condition=AUTOMATION,
                     deps=[PERSONS, XREF, FAMILY_MEMBERS]
                     + [registry_key(c) for c in (*housing_rules().queue_registries, "address_register", "gbd_fl",
                                                  "foreigners_register", "kandas_register", "gbd_rn_real_estate",
                                                  "notary_deals")],
                     description="Every applicant of a social-housing queue (akimats, Otbasy bank) with each rule "
                                 "failed: " + "; ".join(f"{k} — {v}" for k, v in housing_rules().reasons.items())
                                 + ". Pseudonymous person and family ids only."),
        dg.AssetSpec(HOUSING_OUTSIDE, group_name=GROUP, kinds={"parquet"}, owners=[OWNER],
                     automation_condition=AUTOMATION, deps=[HOUSING_AUDIT],
                     description="Families that meet every queue rule but have nobody in any queue: one candidate "
                                 "per family (head or single adult), pseudonymous ids and region."),
        dg.AssetSpec(HOUSING_SUMMARY, group_name=GROUP, kinds={"parquet"}, owners=[OWNER],
                     automation_condition=AUTOMATION, deps=[HOUSING_AUDIT],
                     description="Persons per region and reason: in queue, ineligible, each failing rule, "
                                 "eligible in queue, eligible outside any queue."),
    ],
    op_tags=step_tags(0, whole_country=True),
)
def housing_queue_audit(context: dg.AssetExecutionContext, config: SnapshotConfig, lake: LakeResource):
    from family_pipeline.services.housing_audit import housing_audit_from_lake

    store = lake.lake()
    as_of = as_of_date(config, store)
    t0 = time.perf_counter()
    rules = housing_rules()
    audit, outside, summary = housing_audit_from_lake(store, rules, as_of)
    paths = {HOUSING_AUDIT: _write(store, "housing_queue_audit", audit),
             HOUSING_OUTSIDE: _write(store, "housing_eligible_outside_queue", outside),
             HOUSING_SUMMARY: _write(store, "housing_queue_summary", summary)}
    seconds = round(time.perf_counter() - t0, 2)
    by_reason = {name: int(audit[name].sum()) for name in HOUSING_REASONS}
    by_region = {region: {"in_queue": int(len(g)), "ineligible": int((~g.eligible).sum()),
                          **{name: int(g[name].sum()) for name in HOUSING_REASONS}}
                 for region, g in audit.groupby("queue_region", sort=True)}
    meta = {
        "dagster/row_count": len(audit),
        "as_of": as_of.isoformat(),
        "applicants": len(audit),
        "ineligible": int((~audit.eligible).sum()),
        "eligible_in_queue": int(audit.eligible.sum()),
        "eligible_outside_queue": len(outside),
        "families_known": bool(store.table("families", "family_members").exists()),
        "by_reason": dg.MetadataValue.json(by_reason),
        "by_region": dg.MetadataValue.json(by_region),
        "seconds": seconds,
        "table": dg.MetadataValue.path(paths[HOUSING_AUDIT]),
    }
    if store.truth("housing_queue").exists() and _truth_known(store):
        from family_pipeline.evaluation.services import housing_accuracy, person_map_of

        accuracy = housing_accuracy(audit, pd.read_parquet(store.truth("housing_queue")),
                                    person_map_of(store, list(rules.queue_registries)))
        meta["truth_precision"] = accuracy["overall_pairs"]["precision"]
        meta["truth_recall"] = accuracy["overall_pairs"]["recall"]
        meta["truth_accuracy"] = dg.MetadataValue.json(accuracy)
    context.log.info(f"housing audit on {as_of}: {len(audit)} applicants, {meta['ineligible']} ineligible, "
                     f"{len(outside)} eligible outside any queue ({seconds}s)")
    yield dg.MaterializeResult(asset_key=HOUSING_AUDIT, metadata=meta)
    yield dg.MaterializeResult(asset_key=HOUSING_OUTSIDE, metadata={
        "dagster/row_count": len(outside), "as_of": as_of.isoformat(),
        "by_region": dg.MetadataValue.json({k: int(v) for k, v in outside.groupby("region").size().items()}),
        "table": dg.MetadataValue.path(paths[HOUSING_OUTSIDE])})
    yield dg.MaterializeResult(asset_key=HOUSING_SUMMARY, metadata={
        "dagster/row_count": len(summary), "table": dg.MetadataValue.path(paths[HOUSING_SUMMARY])})


# ------------------------------------------------------------------ juror long-lists
def _partition_path(store: Lake, name: str, region: str):
    """A hive-style dataset: lake/services/<name>.parquet/region=<ISO>/part.parquet (one file per
    partition, so regions materialize independently; the folder reads as one table)."""
    return store.table(GROUP, name) / f"region={region}" / "part.parquet"


@dg.multi_asset(
    specs=[
        dg.AssetSpec(JUROR_LONGLIST, group_name=GROUP, kinds={"parquet"}, owners=[OWNER],
                     automation_condition=AUTOMATION,
                     deps=[PERSONS, XREF, FAMILIES, registry_key("gbd_fl")]
                     + [registry_key(c) for codes in (*juror_rules().exclusions.values(), *juror_rules().flags.values())
                        for c in codes],
                     description="The juror long-list of one region (Law \"On jurors\", art. 10): listed persons in "
                                 "a reproducible keyed-hash order, with pseudonymous person id, settlement type, "
                                 "sex, age band and the flags (over 65, disability, clergy; state language "
                                 "unknown). No names: a court resolves ids through the restricted person lookup."),
        dg.AssetSpec(JUROR_EXCLUSIONS, group_name=GROUP, kinds={"parquet"}, owners=[OWNER],
                     automation_condition=AUTOMATION, deps=[JUROR_LONGLIST],
                     description="Restricted: every living person of the region with the exclusions and flags "
                                 "that apply (pseudonymous ids; justice and health facts) — the audit trail of "
                                 "the long-list."),
    ],
    partitions_def=REGION_PARTITIONS,
)
def juror_longlists(context: dg.AssetExecutionContext, config: SnapshotConfig, lake: LakeResource):
    """One region per partition; a run without a partition key (the whole ``family_map`` job)
    draws every region's list in one pass."""
    from family_pipeline.services.jurors import add_counts, exclusion_counts, judge_persons, juror_evidence, juror_longlist
    from family_pipeline.services.sources import golden_persons

    store = lake.lake()
    regions = [context.partition_key] if context.has_partition_key else list(REGION_PARTITIONS.get_partition_keys())
    as_of = as_of_date(config, store)
    rules = juror_rules()
    t0 = time.perf_counter()
    persons = golden_persons(store)
    persons = persons[persons.region.isin(regions)]
    found = juror_evidence(store, rules)
    settlement = None
    members, families = store.table("families", "family_members"), store.table("families", "families")
    if members.exists() and families.exists():
        m = pd.read_parquet(members, columns=["person_id", "family_id"])
        f = pd.read_parquet(families, columns=["family_id", "settlement_type"]).set_index("family_id").settlement_type
        settlement = pd.Series(f.reindex(m.family_id).to_numpy(dtype=object), index=m.person_id.to_numpy())
        settlement = settlement[~settlement.index.duplicated()]
        del m, f
    listed = judged = 0
    counts: dict[str, int] = {}
    per_region: dict[str, dict] = {}
    for region in regions:  # at most 20, one at a time: memory follows the largest region
        part = judge_persons(persons[persons.region == region].reset_index(drop=True), found["evidence"],
                             found["not_citizen_ids"], rules, as_of, registered_ids=found["registered_ids"])
        longlist = juror_longlist(part, region, settlement, rules, as_of)
        write_parquet(_partition_path(store, "juror_longlist", region),
                      pa.Table.from_pandas(longlist.drop(columns=["region"]), preserve_index=False))
        write_parquet(_partition_path(store, "juror_exclusions", region),
                      pa.Table.from_pandas(part.drop(columns=["region"]), preserve_index=False))
        per_region[region] = exclusion_counts(part, rules)
        counts = add_counts(counts, per_region[region])
        listed += len(longlist)
        judged += len(part)
        del part, longlist
    seconds = round(time.perf_counter() - t0, 2)
    scope = regions[0] if len(regions) == 1 else "all regions"
    context.log.info(f"jurors {scope} on {as_of}: {listed} listed of {judged} ({seconds}s)")
    meta = {"dagster/row_count": listed, "regions": len(regions), "as_of": as_of.isoformat(),
            "listed": counts["listed"], "excluded": counts["excluded"],
            "exclusions_by_reason": dg.MetadataValue.json({k: v for k, v in counts.items() if k.startswith("excluded_")}),
            "flags": dg.MetadataValue.json({k: v for k, v in counts.items() if k.startswith("flagged_")}),
            "order": f"keyed splitmix64 of person id; key = HMAC(secret, region, {as_of.year}, seed {rules.order_seed})",
            "seconds": seconds, "table": dg.MetadataValue.path(str(store.table(GROUP, "juror_longlist")))}
    if len(regions) > 1:
        meta["listed_by_region"] = dg.MetadataValue.json({r: c["listed"] for r, c in per_region.items()})
    yield dg.MaterializeResult(asset_key=JUROR_LONGLIST, metadata=meta)
    yield dg.MaterializeResult(asset_key=JUROR_EXCLUSIONS, metadata={
        "dagster/row_count": judged, "regions": len(regions),
        "table": dg.MetadataValue.path(str(store.table(GROUP, "juror_exclusions")))})


# ------------------------------------------------------------------ benefit assignment
BENEFITS = dg.AssetKey([GROUP, "benefit_assignments"])
BENEFIT_SUMMARY = dg.AssetKey([GROUP, "benefit_summary"])

FAMILY_SCORES = dg.AssetKey(["scoring", "family_scores"])
#: registries the benefit rules read besides the recipient registries
BENEFIT_EVIDENCE = ("higher_education_platform", "tvet_colleges", "nobd_schools", "cbdi_disability", "zags_births")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(BENEFITS, group_name=GROUP, kinds={"parquet"}, owners=[OWNER], automation_condition=AUTOMATION,
                     deps=[FAMILY_SCORES, FAMILY_FEATURES, FAMILIES, FAMILY_MEMBERS, PERSONS, XREF]
                     + [registry_key(c) for c in sorted({*BENEFIT_EVIDENCE, *(r for s in benefit_rules().services
                                                                              for r in s.recipient_registries)})],
                     description="Proactive assignments of ASP, the birth payment and the pilot's 11 services: "
                                 "service, family or person (pseudonymous ids), pilot category, status against "
                                 "today's recipient registries (new / continuing / ended — ended are current "
                                 "recipients who are not eligible), amount where the service pays one, period "
                                 "and reasons in plain words. Category 6 receives nothing."),
        dg.AssetSpec(BENEFIT_SUMMARY, group_name=GROUP, kinds={"parquet"}, owners=[OWNER],
                     automation_condition=AUTOMATION, deps=[BENEFITS],
                     description="Assignments and amounts per service and status."),
    ],
    op_tags=step_tags(ON_THE_PATH, whole_country=True),
)
def benefit_assignments(context: dg.AssetExecutionContext, config: SnapshotConfig, lake: LakeResource):
    from family_pipeline.services.benefits import assign_benefits, assignment_summary, benefit_inputs_from_lake

    store = lake.lake()
    as_of = as_of_date(config, store)
    rules = benefit_rules()
    money = catalog().money_on(as_of)
    t0 = time.perf_counter()
    assignments = assign_benefits(benefit_inputs_from_lake(store, rules), rules, money, as_of)
    summary = assignment_summary(assignments)
    paths = {BENEFITS: _write(store, "benefit_assignments", assignments),
             BENEFIT_SUMMARY: _write(store, "benefit_summary", summary)}
    seconds = round(time.perf_counter() - t0, 2)
    by_status = {f"{k[0]}:{k[1]}": int(v) for k, v in assignments.groupby(["service", "status"]).size().items()}
    amounts = {k: round(float(v), 0) for k, v in assignments.groupby("service").amount.sum().items() if v > 0}
    meta = {"dagster/row_count": len(assignments), "as_of": as_of.isoformat(),
            "subsistence_minimum": money.subsistence_minimum, "mrp": money.mrp,
            "new": int((assignments.status == "new").sum()),
            "continuing": int((assignments.status == "continuing").sum()),
            "ended": int((assignments.status == "ended").sum()),
            "by_service_status": dg.MetadataValue.json(by_status),
            "amount_by_service": dg.MetadataValue.json(amounts),
            "seconds": seconds, "table": dg.MetadataValue.path(paths[BENEFITS])}
    if store.truth("families").exists() and _truth_known(store):
        from family_pipeline.evaluation.services import benefit_accuracy, person_map_of

        accuracy = benefit_accuracy(assignments, pd.read_parquet(store.truth("persons")),
                                    pd.read_parquet(store.truth("families")), pd.read_parquet(store.truth("births")),
                                    person_map_of(store), pd.Timestamp(as_of))
        meta["truth_asp_precision"] = accuracy["asp"]["precision"]
        meta["truth_asp_recall"] = accuracy["asp"]["recall"]
        meta["truth_accuracy"] = dg.MetadataValue.json(accuracy)
    context.log.info(f"benefits on {as_of}: {meta['new']} new, {meta['continuing']} continuing, "
                     f"{meta['ended']} ended ({seconds}s)")
    yield dg.MaterializeResult(asset_key=BENEFITS, metadata=meta)
    yield dg.MaterializeResult(asset_key=BENEFIT_SUMMARY, metadata={
        "dagster/row_count": len(summary), "table": dg.MetadataValue.path(paths[BENEFIT_SUMMARY])})
